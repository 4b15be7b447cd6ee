// Package feedstate decides which release feed is a collector's current
// one (docs/feed.md, "Delivery to agents"): the stored feed with the
// greatest serial, or the built-in snapshot when its serial is greater or
// none is stored. The server (which judges reports by it and sends it to
// agents), the dashboard and "ward-collector feed show" all ask it, so
// they agree. It also says how old the feed is, when it expires, and which
// devices run a line that reaches its end of life soon.
package feedstate
