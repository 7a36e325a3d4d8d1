// Package faults holds the fault tests of TESTING.md tier 4 (build tag
// "faults", run by `make faults`): PostgreSQL restarted and its connections cut
// mid-commit, the server SIGKILLed mid-set, a reconnect storm, a silent socket.
// They drive the real server over real WebSockets on loopback only, are bounded
// in time and stop by themselves; each prints what it measured.
package faults
