// Package protocols is Airlock's protocol-neutral vocabulary and the Pipeline
// every client command passes through before it reaches an upstream.
//
// An engine (protocols/postgres, later mysql, redis and http) owns the wire:
// it decodes a client message into a Command, asks Pipeline.Check for a
// Decision, forwards or refuses in the protocol's own error form, and streams
// the upstream's reply back through the session's Masker and Recorder.
//
// Meaning lives elsewhere and plugs in through the small interfaces declared
// here: a Classifier (sqlrisk), a Policy and an Approver (approvals), a Masker
// (masking), a Recorder and an Authenticator (session). This package imports
// none of them, so the dependency arrow always points here.
package protocols
