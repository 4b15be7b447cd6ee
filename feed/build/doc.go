// Package build makes a release feed (package feed) from the public files
// vendors and trackers publish: SOFA's macOS data feed (FromSOFA), MSRC's
// monthly CVRF documents in their JSON form (FromCVRF) and endoflife.date's
// product data (FromEndOfLife). Build merges what they say into one feed
// that feed.Validate accepts, naming each file by its SHA-256 in the
// feed's sources. Every converter is a pure function of the file's bytes
// and refuses a file that is not what it claims to be, with a clear error;
// none reaches the network (docs/feed.md, "Building a feed").
package build
