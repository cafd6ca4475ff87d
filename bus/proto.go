package bus

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

// ProtocolVersion is the version this build speaks.
const ProtocolVersion = 1

// MaxMessage bounds every control message.
const MaxMessage = 4096

// maxListedPeers bounds the peers a TopicDesc lists (it must fit MaxMessage
// and the msgp array limit below).
const maxListedPeers = 32

// Operations.
const (
	OpAttach   = 1 // map the ring: the Response carries its descriptors
	OpDescribe = 2 // schema, geometry, cursor, rate, subscribers, writer
	OpStats    = 3 // the live counters only: cursor, rate, subscribers
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

//msgp:tuple Request Response TopicDesc Peer

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
	RateHz          float64
	Subscribers     uint32 // how many are attached
	Peers           []Peer // the first maxListedPeers of them
}

// Peer is one attached subscriber.
type Peer struct {
	PID              int32
	UID              uint32
	AttachedUnixNano int64
	Mode             uint8 // ring.Stream or ring.Latest
}
