// Package policy decides what happens to a classified command: allow it,
// hold it for review, or deny it. It maps risk levels to actions, lets rule
// ids (and whole rule categories) override that mapping, and lets both be
// overridden per connection and per identity or group.
//
// A Policy is built from two Config layers, the global policy and a
// connection's overrides, on top of the defaults (none, low and medium
// allow; high review; critical deny). See Policy for the precedence rules
// and Config for the YAML shape. Rule ids are validated against the
// catalogue of sqlrisk/rule; this package imports nothing else of sqlrisk.
package policy
