// Command badwasi reads a file: the Go runtime then imports WASI file-system functions
// (path_open...) that the host does not provide, so the module is refused at load.
package main

import "os"

//go:wasmexport gather_abi_version_1
func marker() {}

//go:wasmexport gather
func gather() int32 {
	if _, err := os.ReadFile("/etc/hostname"); err != nil {
		return 1
	}
	return 0
}

func main() {}
