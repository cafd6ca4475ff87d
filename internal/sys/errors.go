package sys

import "errors"

// ErrNotSupported is returned by every function on systems other than Linux,
// and on Linux where the kernel lacks the needed feature.
var ErrNotSupported = errors.New("sensorbus: not supported on this system")
