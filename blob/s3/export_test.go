package s3

// WindowCopies is how many bytes reads have copied out of read-ahead
// windows since the test binary started.
func WindowCopies() int64 { return windowCopies.Load() }
