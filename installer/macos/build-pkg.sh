#!/bin/sh
# Build the Ward agent's flat .pkg on a Mac from the payload that
# `go run ./build` (installer/) writes as ward-agent-VERSION-macos-ARCH.tar.gz.
#
#   tar -xzf ward-agent-1.2.0-macos-arm64.tar.gz -C work && cd work
#   ./build-pkg.sh ["Developer ID Installer: Your Org (TEAMID)"]
#
# Produces ward-agent-VERSION.pkg (productbuild, signed when an identity is
# given). Notarise it with: xcrun notarytool submit ward-agent-VERSION.pkg --wait ...
set -eu
cd "$(dirname "$0")"
version=$(cat VERSION)
sign=${1:-}
chmod 0755 root/usr/local/bin/ward-agent scripts/preinstall scripts/postinstall
pkgbuild --root root --scripts scripts --identifier org.wardhq.ward.agent \
	--version "$version" --install-location / --ownership recommended component.pkg
if [ -n "$sign" ]; then
	productbuild --package component.pkg --identifier org.wardhq.ward --version "$version" \
		--sign "$sign" "ward-agent-$version.pkg"
else
	productbuild --package component.pkg --identifier org.wardhq.ward --version "$version" "ward-agent-$version.pkg"
fi
rm -f component.pkg
echo "built ward-agent-$version.pkg"
