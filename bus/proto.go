package bus

import "fmt"

//go:generate go tool msgp -file proto.go -o proto_gen.go -tests=false

// The control protocol. A subscriber connects to a topic's
// SOCK_SEQPACKET socket and sends Requests; the publisher answers each
// with one Response. An attach Response carries two descriptors
// (SCM_RIGHTS): the ring, read-only, and its wake file. The connection then
// stays open: its end tells each side the other is gone.
//
// Every message is one MessagePack array (msgp tuple form) of at most
// MaxMessage bytes; a longer one is refused, not read. Requests carry the
// protocol version; a publisher answers a version it does not speak with
// CodeVersion.
//
// An attached subscriber sends OpReport requests on its connection, about
// once a second and once more when it leaves: its own counters, under a
// name it chooses. The publisher answers none of them; it keeps the
// latest valid one per connection and drops (and counts) anything else an
// attached peer sends: malformed, oversized or of another version, an
// operation other than OpReport, or reports beyond its rate limit.
//
// Version 3 added OpReport, Request.Report and the Peer and TopicDesc
// fields after Mode and Origin.

// ProtocolVersion is the version this build speaks.
const ProtocolVersion = 4

// MaxMessage bounds every control message.
const MaxMessage = 4096

// maxListedPeers bounds the peers a TopicDesc lists (it must fit the msgp
// array limit below). A Peer with a report takes up to about 170 bytes, so
// Describe also drops peers from the end of the list until the answer fits
// MaxMessage; Subscribers still counts them all.
const maxListedPeers = 20

// MaxNameLen bounds a subscriber's name (SubscriberConfig.Name, Report.Name).
const MaxNameLen = 64

// Operations.
const (
	OpAttach   = 1 // map the ring: the Response carries its descriptors
	OpDescribe = 2 // schema, geometry, cursor, rate, subscribers, writer
	OpStats    = 3 // the live counters only: cursor, rate, subscribers
	OpReport   = 4 // an attached subscriber's counters (Request.Report); never answered
)

// Response codes.
const (
	CodeOK         = 0
	CodeBadRequest = 1 // malformed, oversized or unknown
	CodeVersion    = 2 // protocol version not spoken
	CodeSchema     = 3 // the subscriber expects another schema
	CodePermission = 4 // the peer is not allowed
	CodeInternal   = 5
	CodeLimit      = 6 // the publisher's connection limits are reached
)

//msgp:tuple Request Response TopicDesc Peer Report

// Generated decoders refuse arrays longer than this before allocating: a
// header may claim billions of elements in five bytes.
//msgp:limit arrays:64 maps:16

// Request is what a client sends.
type Request struct {
	Version     uint8
	Op          uint8
	Schema      string // expected schema name; "" with Untyped
	Fingerprint uint64 // expected schema fingerprint
	Untyped     bool   // accept any schema
	Mode        uint8  // the subscriber's reading mode (ring.Stream or ring.Latest), for the publisher's list
	Report      Report // OpReport only
}

// Report is what an attached subscriber says of itself. The publisher
// checks its form (ValidName), never its truth: a subscriber can only lie
// about itself.
type Report struct {
	Name         string // the subscriber's stable name: 1 to MaxNameLen printable ASCII bytes
	Received     uint64 // samples delivered, across publisher restarts
	Lost         uint64 // samples lost (Stream) or skipped (Latest)
	Lag          uint64 // samples published but not yet delivered, when it counted
	Restarts     uint64 // publisher restarts it re-attached across
	LatencyP50Ns int64  // publish-to-receipt latency percentiles; 0: not measured
	LatencyP99Ns int64
	Final        bool // the subscriber is leaving
}

// Response is the publisher's answer to one Request.
type Response struct {
	Version uint8
	Code    uint8
	Error   string // why, when Code is not CodeOK
	Topic   TopicDesc
}

// TopicDesc describes a topic as its publisher sees it.
type TopicDesc struct {
	Topic           string
	Schema          string
	Fingerprint     uint64
	SlotSize        uint32
	Slots           uint32
	Generation      uint64
	WriterPID       int32
	StartedUnixNano int64
	Published       uint64
	RateHz          float64 // samples/s over the last second
	Subscribers     uint32  // how many are attached
	Peers           []Peer  // the first maxListedPeers of them
	Origin          string  // where the samples come from, for a relayed topic (PublisherConfig.Origin)

	// BytesPublished counts the payload bytes of the samples published
	// through Publisher.Publish and PublishMessage (not those written
	// straight into Ring()).
	BytesPublished uint64
	// LastPublishUnixNano is when the publisher last saw its cursor move,
	// to within its heartbeat interval; 0 if it has published nothing.
	LastPublishUnixNano int64
	// ReportsDropped counts messages from attached subscribers the
	// publisher dropped: malformed, not a report, or over the rate limit.
	ReportsDropped uint64
	// Skipped counts the samples the publisher accounted as lost without
	// publishing them (Publisher.Skip): a relay's upstream loss.
	Skipped uint64
}

// Peer is one attached subscriber.
type Peer struct {
	PID              int32
	UID              uint32
	AttachedUnixNano int64
	Mode             uint8 // ring.Stream or ring.Latest

	// What the subscriber last reported of itself (Report), and when, by
	// the publisher's clock; ReportUnixNano 0: it has not reported.
	Name           string
	Received       uint64
	Lost           uint64
	Lag            uint64
	Restarts       uint64
	LatencyP50Ns   int64
	LatencyP99Ns   int64
	ReportUnixNano int64
}

// ValidName checks a subscriber's name: 1 to MaxNameLen bytes of
// printable ASCII.
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: a subscriber name has 1 to %d bytes, not %d", ErrInvalid, MaxNameLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b < 0x20 || b > 0x7e {
			return fmt.Errorf("%w: subscriber name %q has a non-printable byte at %d", ErrInvalid, name, i)
		}
	}
	return nil
}
