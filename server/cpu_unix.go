//go:build unix

package server

import "syscall"

// processCPU returns the process's system and user CPU seconds.
func processCPU() (sys, user float64, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, false
	}
	return tvSeconds(ru.Stime), tvSeconds(ru.Utime), true
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}
