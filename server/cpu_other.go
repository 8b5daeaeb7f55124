//go:build !unix

package server

// processCPU is not available on this platform: INFO leaves the CPU
// section empty rather than guessing.
func processCPU() (sys, user float64, ok bool) { return 0, 0, false }
