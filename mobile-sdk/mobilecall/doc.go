// Package mobilecall is the gomobile-bindable face of package call: the
// app places a call on a ticket, feeds its encoded microphone (Opus) and
// camera (VP8) frames, and hears the call's state, the agent's frames, the
// agent's keyframe requests and the data channel's messages through a
// Listener it implements; RequestKeyframe asks the agent's encoder for
// one in turn.
//
// Only types gomobile binds cross its surface (mobile-sdk/bind_test.go
// checks it). It takes package mobile's Client, so the two are bound
// together:
//
//	gomobile bind ./mobile-sdk/mobile ./mobile-sdk/mobilecall
//
// It is a package of its own because it imports pion (through call):
// package mobile stays free of WebRTC for apps that never call. Like the
// rest of the SDK it must never import a server package (gateway, rtc,
// state, ...).
package mobilecall
