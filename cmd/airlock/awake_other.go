//go:build !linux

package main

// awake does nothing where the keeper's raw sleep is not implemented (see
// awake_linux.go).
type awake struct{}

var scheduler awake

func (a *awake) hold() (release func()) { return func() {} }
