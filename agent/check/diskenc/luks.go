package diskenc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// maxStackDepth bounds the walk down a block-device stack.
const maxStackDepth = 16

// cryptMethods are the dm-crypt subsystems (dm/uuid "CRYPT-<TYPE>-...")
// that encrypt. VERITY, INTEGRITY and SUBDEV (LUKS2 integrity's helper
// device) are dm-crypt's siblings that do not encrypt.
var cryptMethods = map[string]string{
	"LUKS1": "LUKS1", "LUKS2": "LUKS2", "PLAIN": "PLAIN", "LOOPAES": "LOOPAES",
	"TCRYPT": "TCRYPT", "BITLK": "BITLK", "FVAULT2": "FVAULT2",
}

// fixedFSTypes are filesystems Ward lists as fixed volumes when they sit on
// a real block device.
var fixedFSTypes = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "vfat": true,
	"exfat": true, "ntfs": true, "ntfs3": true, "f2fs": true, "jfs": true, "reiserfs": true,
	"bcachefs": true, "nilfs2": true, "hfsplus": true,
}

// Block majors that are memory or files, not disks: ram, loop, zram's
// dynamic major is recognised by name.
const (
	majorRAM  = 1
	majorLoop = 7
)

// layer is one device in the stack under a filesystem.
type layer struct {
	Name string // kernel name: dm-0, nvme0n1p3, md127
	// Kind is CRYPT-LUKS2, LVM, part, raid1, ... ; empty for a plain
	// disk or partition.
	Kind string
	// Method is the encryption method when the layer is dm-crypt.
	Method string
	// Encrypts is true for a dm-crypt layer that encrypts.
	Encrypts bool
	Below    []*layer
	// Disk is the whole disk a partition belongs to, or the device itself.
	Disk string
	// Err is why the walk could not read this layer.
	Err error
}

// covered reports whether every path from l down to the hardware passes
// through an encrypting layer.
func (l *layer) covered() bool {
	if l.Encrypts {
		return true
	}
	if len(l.Below) == 0 {
		return false
	}
	for _, b := range l.Below {
		if !b.covered() {
			return false
		}
	}
	return true
}

// unreadable reports whether some layer could not be read.
func (l *layer) unreadable() error {
	if l.Err != nil {
		return l.Err
	}
	for _, b := range l.Below {
		if err := b.unreadable(); err != nil {
			return err
		}
	}
	return nil
}

// cryptLayer returns the first encrypting layer from the top.
func (l *layer) cryptLayer() *layer {
	if l.Encrypts {
		return l
	}
	for _, b := range l.Below {
		if c := b.cryptLayer(); c != nil {
			return c
		}
	}
	return nil
}

// chain renders "dm-1 (LVM) > dm-0 (CRYPT-LUKS2) > nvme0n1p3"; several
// devices below one (RAID, an LV over two PVs) are shown in braces.
func (l *layer) chain() string {
	s := l.Name
	if l.Kind != "" {
		s += " (" + l.Kind + ")"
	}
	switch len(l.Below) {
	case 0:
		return s
	case 1:
		return s + " > " + l.Below[0].chain()
	}
	parts := make([]string, len(l.Below))
	for i, b := range l.Below {
		parts[i] = b.chain()
	}
	return s + " > {" + strings.Join(parts, " + ") + "}"
}

// disks lists the whole disks at the bottom of the stack.
func (l *layer) disks() []string {
	if len(l.Below) == 0 {
		return []string{l.Disk}
	}
	var out []string
	for _, b := range l.Below {
		out = append(out, b.disks()...)
	}
	return out
}

// walker reads the sysfs block-device tree through a Source.
type walker struct {
	ctx context.Context
	src check.Source
}

func (w *walker) read(path string) (string, error) {
	data, err := w.src.ReadFile(w.ctx, path, 4096)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// nameOf resolves MAJ:MIN to the kernel's device name.
func (w *walker) nameOf(major, minor uint32) (string, error) {
	uevent, err := w.read(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", major, minor))
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(uevent, "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("block device %d:%d: uevent has no DEVNAME", major, minor)
}

// resolveDevPath turns /dev/NAME, /dev/mapper/NAME or /dev/dm-N into the
// kernel name.
func (w *walker) resolveDevPath(p string) (string, error) {
	if name, ok := strings.CutPrefix(p, "/dev/mapper/"); ok {
		blocks, err := w.src.ReadDir(w.ctx, "/sys/block")
		if err != nil {
			return "", err
		}
		for _, b := range blocks {
			if !strings.HasPrefix(b, "dm-") {
				continue
			}
			if n, err := w.read("/sys/block/" + b + "/dm/name"); err == nil && n == name {
				return b, nil
			}
		}
		return "", fmt.Errorf("%s: no device-mapper device of that name: %w", p, fs.ErrNotExist)
	}
	name, ok := strings.CutPrefix(p, "/dev/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%s: not a block device path Ward can follow", p)
	}
	if _, err := w.read("/sys/class/block/" + name + "/uevent"); err != nil {
		return "", err
	}
	return name, nil
}

// walk builds the stack below the device called name.
func (w *walker) walk(name string, depth int) *layer {
	l := &layer{Name: name, Disk: name}
	if depth > maxStackDepth {
		l.Err = errors.New("device stack too deep")
		return l
	}
	base := "/sys/class/block/" + name
	uuid, err := w.read(base + "/dm/uuid")
	switch {
	case err == nil:
		l.Kind, l.Method, l.Encrypts = dmKind(uuid)
	case errors.Is(err, fs.ErrNotExist):
		if level, err := w.read(base + "/md/level"); err == nil {
			l.Kind = level
		}
	default:
		l.Err = fmt.Errorf("%s: %w", name, err)
		return l
	}
	if strings.HasPrefix(name, "dm-") && err != nil {
		l.Kind = "dm"
	}
	slaves, err := w.src.ReadDir(w.ctx, base+"/slaves")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.Err = fmt.Errorf("%s slaves: %w", name, err)
		return l
	}
	for _, s := range slaves {
		l.Below = append(l.Below, w.walk(s, depth+1))
	}
	if len(slaves) == 0 {
		l.Disk = w.diskOf(name)
	}
	return l
}

// dmKind names a device-mapper layer from its dm/uuid.
func dmKind(uuid string) (kind, method string, encrypts bool) {
	if rest, ok := strings.CutPrefix(uuid, "CRYPT-"); ok {
		typ, _, _ := strings.Cut(rest, "-")
		kind = "CRYPT-" + typ
		method, encrypts = cryptMethods[typ]
		return kind, method, encrypts
	}
	if uuid == "" {
		return "dm", "", false
	}
	prefix, _, _ := strings.Cut(uuid, "-")
	return prefix, "", false
}

// diskOf finds the whole disk a partition is on: /sys/block/DISK/NAME
// exists for each partition NAME of DISK.
func (w *walker) diskOf(name string) string {
	if _, err := w.src.ReadFile(w.ctx, "/sys/class/block/"+name+"/partition", 64); err != nil {
		return name
	}
	disks, err := w.src.ReadDir(w.ctx, "/sys/block")
	if err != nil {
		return name
	}
	for _, d := range disks {
		if _, err := w.src.Stat(w.ctx, "/sys/block/"+d+"/"+name); err == nil {
			return d
		}
	}
	return name
}

// removable reports whether any disk below l is removable.
func (w *walker) removable(l *layer) bool {
	for _, d := range l.disks() {
		if v, err := w.read("/sys/block/" + d + "/removable"); err == nil && v == "1" {
			return true
		}
	}
	return false
}

// luksMethod reads the LUKS header of a dm-crypt layer's backing device to
// confirm the version. Errors are not fatal: dm/uuid already named it.
func (w *walker) luksMethod(c *layer) string {
	if len(c.Below) != 1 || (c.Method != "LUKS1" && c.Method != "LUKS2") {
		return ""
	}
	data, err := w.src.ReadFile(w.ctx, "/dev/"+c.Below[0].Name, 4096)
	if err != nil {
		return ""
	}
	h, err := parseLUKSHeader(data)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("LUKS%d", h.Version)
}

// volume describes the filesystem on device name.
func (w *walker) volume(mountPoint, device, name string) *wardv1.Volume {
	v := &wardv1.Volume{MountPoint: mountPoint, Device: device}
	top := w.walk(name, 0)
	v.Chain = top.chain()
	v.Removable = w.removable(top)
	if err := top.unreadable(); err != nil && !top.covered() {
		check.SetVolumeReason(v, "could not read the whole device stack: "+err.Error(),
			texts.New("reason.disk_layers_unreadable", "detail", err.Error()))
		return v
	}
	if !top.covered() {
		v.Encrypted = new(false)
		v.Protection = wardv1.Protection_PROTECTION_OFF
		v.Conversion = wardv1.Conversion_CONVERSION_FULLY_DECRYPTED
		if c := top.cryptLayer(); c != nil {
			check.SetVolumeReason(v, "only part of the device stack goes through "+c.Name+" ("+c.Kind+")",
				texts.New("reason.disk_partly_encrypted", "layer", c.Name+" ("+c.Kind+")"))
		}
		return v
	}
	c := top.cryptLayer()
	v.Encrypted = new(true)
	v.Method = c.Method
	if m := w.luksMethod(c); m != "" && m != c.Method {
		check.SetVolumeReason(v, fmt.Sprintf("device-mapper says %s, the header says %s", c.Method, m),
			texts.New("reason.disk_method_differs", "reported", c.Method, "header", m))
		v.Method = m
	}
	// The mapping is active (it is in sysfs), so the key is loaded and
	// the data below is ciphertext: protected at rest when powered off.
	v.Protection = wardv1.Protection_PROTECTION_ON
	v.Conversion = wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED
	return v
}

// collectLinux finds the root filesystem's block device in mountinfo and
// walks the device-mapper/md/partition stack below it in sysfs; then the
// other fixed filesystems and swap.
func collectLinux(ctx context.Context, src check.Source) *wardv1.DiskEncryptionFacts {
	facts := &wardv1.DiskEncryptionFacts{}
	w := &walker{ctx: ctx, src: src}
	data, err := src.ReadFile(ctx, "/proc/self/mountinfo", check.MaxFile)
	if err != nil {
		facts.Collection = check.FailedText([]texts.Text{check.ErrText("/proc/self/mountinfo", err)}, "cannot read /proc/self/mountinfo: %v", err)
		return facts
	}
	mounts, err := parseMountinfo(data)
	if err != nil {
		facts.Collection = check.FailedText([]texts.Text{check.ParseText("/proc/self/mountinfo", err)}, "%v", err)
		return facts
	}
	var problems check.Problems
	root, ok := rootMount(mounts)
	if !ok {
		facts.Collection = check.FailedText([]texts.Text{texts.New("reason.disk_no_root")}, "no filesystem is mounted at / in mountinfo")
		return facts
	}
	sys := w.mountVolume(root)
	sys.System = true
	facts.Volumes = append(facts.Volumes, sys)
	if sys.Encrypted == nil {
		problems.Add("root filesystem: "+sys.Reason, volumeText(sys)...)
	}

	seen := map[[2]uint32]bool{{root.Major, root.Minor}: true}
	seenSource := map[string]bool{}
	for _, m := range mounts {
		dev := [2]uint32{m.Major, m.Minor}
		if m.Major == 0 {
			// btrfs reports an anonymous device per subvolume; its
			// source names the block device.
			dev = [2]uint32{0, 0}
			if seenSource[m.Source] || m.Source == root.Source {
				continue
			}
		}
		// Bind mounts of a subdirectory (Root other than "/") repeat a
		// filesystem mounted elsewhere, except btrfs subvolumes.
		if (dev != [2]uint32{} && seen[dev]) || !fixedFSTypes[m.FSType] || !strings.HasPrefix(m.Source, "/dev/") ||
			m.Major == majorLoop || m.Major == majorRAM || (m.Root != "/" && m.FSType != "btrfs") {
			continue
		}
		seen[dev] = true
		seenSource[m.Source] = true
		v := w.mountVolume(m)
		if strings.HasPrefix(v.Chain, "zram") {
			continue
		}
		if v.Encrypted == nil {
			problems.Add(m.MountPoint+": "+v.Reason, volumeText(v)...)
		} else if isBootMount(m.MountPoint) && !*v.Encrypted && v.Reason == "" {
			check.SetVolumeReason(v, "boot partition: usually left unencrypted so firmware and boot loader can read it",
				texts.New("reason.disk_boot_partition"))
		}
		facts.Volumes = append(facts.Volumes, v)
	}

	swaps, err := w.swapVolumes(mounts)
	if err != nil {
		problems.Add(err.Error(), check.TextOf("/proc/swaps", err)...)
	}
	for _, v := range swaps {
		if v.Encrypted == nil {
			problems.Add("swap "+v.Device+": "+v.Reason,
				append([]texts.Text{texts.New("reason.at_swap", "device", v.Device)}, texts.FromProto(v.ReasonText)...)...)
		}
	}
	facts.Volumes = append(facts.Volumes, swaps...)

	switch {
	case sys.Encrypted == nil:
		facts.Collection = check.PartialText(problems.Text, "%s", problems.String())
	case problems.Len() > 0:
		facts.Collection = check.PartialText(problems.Text, "%s", problems.String())
	default:
		facts.Collection = check.OK()
	}
	return facts
}

// volumeText is a volume's reason for staff, introduced by its mount point
// (its English reason as the detail should a path have set no message).
func volumeText(v *wardv1.Volume) []texts.Text {
	why := texts.FromProto(v.ReasonText)
	if len(why) == 0 && v.Reason != "" {
		why = []texts.Text{texts.New(check.IDDetail, "detail", v.Reason)}
	}
	return append([]texts.Text{check.At(v.MountPoint)}, why...)
}

func isBootMount(mp string) bool {
	return mp == "/boot" || mp == "/boot/efi" || mp == "/efi"
}

// mountVolume describes a mounted filesystem.
func (w *walker) mountVolume(m mount) *wardv1.Volume {
	v := &wardv1.Volume{MountPoint: m.MountPoint, Device: m.Source}
	name, err := w.deviceName(m)
	if err != nil {
		check.SetVolumeReason(v, err.Error(), check.TextOf(m.Source, err)...)
		return v
	}
	vol := w.volume(m.MountPoint, m.Source, name)
	return vol
}

// deviceName finds the kernel device under a mount: by MAJ:MIN, or by the
// source path when the filesystem reports an anonymous device (btrfs).
func (w *walker) deviceName(m mount) (string, error) {
	if m.Major != 0 {
		name, err := w.nameOf(m.Major, m.Minor)
		if err != nil {
			return "", check.Reasoned(fmt.Sprintf("%s on %s: cannot find block device %d:%d: %v", m.FSType, m.Source, m.Major, m.Minor, err),
				texts.New("reason.disk_device_not_found", "device", m.Source, "detail", err.Error()))
		}
		return name, nil
	}
	if strings.HasPrefix(m.Source, "/dev/") && fixedFSTypes[m.FSType] {
		name, err := w.resolveDevPath(m.Source)
		if err != nil {
			return "", check.Reasoned(fmt.Sprintf("%s on %s: %v", m.FSType, m.Source, err),
				texts.New("reason.disk_device_not_found", "device", m.Source, "detail", err.Error()))
		}
		return name, nil
	}
	return "", check.Reasoned(fmt.Sprintf("%s filesystem from %q is not on a block device Ward can follow, so its encryption is unknown", m.FSType, m.Source),
		texts.New("reason.disk_not_followable", "fstype", m.FSType, "source", m.Source))
}

// swapArea is one line of /proc/swaps.
type swapArea struct {
	Filename string
	Type     string // partition or file
}

// parseSwaps parses /proc/swaps (a header line, then one area per line;
// spaces in names are octal-escaped).
func parseSwaps(data []byte) ([]swapArea, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "Filename") {
		return nil, errors.New("/proc/swaps: no header")
	}
	var out []swapArea
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("/proc/swaps: malformed line %q", sc.Text())
		}
		out = append(out, swapArea{Filename: unescapeOctal(f[0]), Type: f[1]})
	}
	return out, sc.Err()
}

// swapVolumes describes each swap area. zram swap is compressed memory,
// not disk: nothing of it survives power-off, so it is not a volume that
// can leak data at rest and is left out.
func (w *walker) swapVolumes(mounts []mount) ([]*wardv1.Volume, error) {
	data, err := w.src.ReadFile(w.ctx, "/proc/swaps", check.MaxFile)
	if err != nil {
		return nil, check.Reasoned("cannot read /proc/swaps: "+err.Error(), check.ErrText("/proc/swaps", err))
	}
	areas, err := parseSwaps(data)
	if err != nil {
		return nil, check.Reasoned(err.Error(), check.ParseText("/proc/swaps", err))
	}
	var out []*wardv1.Volume
	for _, a := range areas {
		if strings.HasPrefix(a.Filename, "/dev/zram") {
			continue
		}
		var v *wardv1.Volume
		switch a.Type {
		case "partition":
			name, err := w.resolveDevPath(a.Filename)
			if err != nil {
				v = &wardv1.Volume{Device: a.Filename}
				check.SetVolumeReason(v, "cannot find the swap device: "+err.Error(),
					texts.New("reason.disk_device_not_found", "device", a.Filename, "detail", err.Error()))
				break
			}
			if strings.HasPrefix(name, "zram") {
				continue
			}
			v = w.volume("swap", a.Filename, name)
		case "file":
			m, ok := mountOf(mounts, a.Filename)
			if !ok {
				v = &wardv1.Volume{Device: a.Filename}
				check.SetVolumeReason(v, "no mount holds the swap file", texts.New("reason.swap_file_no_mount"))
				break
			}
			v = w.mountVolume(m)
			v.Device = a.Filename
			v.Chain = "file on " + m.MountPoint + ": " + v.Chain
		default:
			v = &wardv1.Volume{Device: a.Filename}
			check.SetVolumeReason(v, "unknown swap type "+a.Type, texts.New("reason.swap_unknown_type", "type", a.Type))
		}
		v.MountPoint = "swap"
		v.Swap = true
		out = append(out, v)
	}
	return out, nil
}
