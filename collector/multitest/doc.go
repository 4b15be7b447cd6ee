// Package multitest runs several ward-collector processes on one
// PostgreSQL database behind a round-robin TCP proxy, as an operator
// would behind a load balancer, and kills one of them under load
// (docs/multi-collector.md). It holds only tests.
package multitest
