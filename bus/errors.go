package bus

import (
	"errors"
	"fmt"
	"os"

	"github.com/sensorbus/sensorbus/schema"
)

var (
	// ErrTopicBusy is returned when a live publisher owns the topic; the
	// error is a *TopicBusyError naming its pid.
	ErrTopicBusy = errors.New("bus: topic has a live publisher")

	// ErrPermission is returned to a peer the publisher does not admit;
	// the error is a *PermissionError with the publisher's reason.
	ErrPermission = errors.New("bus: permission denied")

	// ErrNoPublisher is returned when no publisher of the topic appeared
	// within the wait.
	ErrNoPublisher = errors.New("bus: no publisher")

	// ErrSchemaMismatch is schema.ErrSchemaMismatch.
	ErrSchemaMismatch = schema.ErrSchemaMismatch

	// ErrProtocol is returned for a control message that breaks the
	// protocol: malformed, oversized, or of a version not spoken.
	ErrProtocol = errors.New("bus: protocol error")

	// ErrBadDir is returned for a bus directory that is unsafe to use.
	ErrBadDir = errors.New("bus: unsafe bus directory")

	// ErrLimit is returned when a publisher refuses a connection because
	// its connection limits are reached.
	ErrLimit = errors.New("bus: connection limit reached")

	// ErrNoBus is returned when the bus directory does not exist (only a
	// publisher creates it).
	ErrNoBus = errors.New("bus: no bus")

	// ErrInvalid is returned for a configuration or name that cannot work;
	// the text names the field and what it accepts.
	ErrInvalid = errors.New("bus: invalid configuration")

	// ErrClosed is os.ErrClosed.
	ErrClosed = os.ErrClosed
)

// TopicBusyError names the publisher that owns a topic.
type TopicBusyError struct {
	Topic string
	PID   int // 0 if unknown
}

func (e *TopicBusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("bus: topic %q already has a live publisher (pid %d)", e.Topic, e.PID)
	}
	return fmt.Sprintf("bus: topic %q already has a live publisher", e.Topic)
}

// Unwrap makes errors.Is(err, ErrTopicBusy) true.
func (e *TopicBusyError) Unwrap() error { return ErrTopicBusy }

// PermissionError carries the publisher's reason for refusing.
type PermissionError struct {
	Topic  string
	Reason string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("bus: topic %q refused access: %s", e.Topic, e.Reason)
}

// Unwrap makes errors.Is(err, ErrPermission) true.
func (e *PermissionError) Unwrap() error { return ErrPermission }
