package region

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	gproto "google.golang.org/protobuf/proto"
)

// maxFrame bounds one forwarding message, so a hostile or corrupt peer
// cannot make a node allocate without limit. It leaves room for a write of
// Redis's largest bulk string.
const maxFrame = 1 << 30

var errFrameTooBig = errors.New("region: forwarding frame exceeds the size limit")

// appendFrame appends m as a length-prefixed frame.
func appendFrame(buf []byte, m gproto.Message) ([]byte, error) {
	body, err := gproto.Marshal(m)
	if err != nil {
		return buf, err
	}
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	return append(buf, body...), nil
}

// readFrame reads one frame into m.
func readFrame(r *bufio.Reader, m gproto.Message) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if n > maxFrame {
		return errFrameTooBig
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	return gproto.Unmarshal(body, m)
}

// frameQueue collects frames for one connection; its writer sends whatever
// accumulated since its last write in one syscall, so the replies to (or
// requests of) many writes share it.
type frameQueue struct {
	mu     sync.Mutex
	buf    []byte
	signal chan struct{}
}

func newFrameQueue() *frameQueue { return &frameQueue{signal: make(chan struct{}, 1)} }

// push queues m for the writer.
func (q *frameQueue) push(m gproto.Message) {
	q.mu.Lock()
	q.buf, _ = appendFrame(q.buf, m)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// writeTo writes queued frames to c until done is closed (nil) or a write
// fails or takes longer than timeout (its error).
func (q *frameQueue) writeTo(c net.Conn, timeout time.Duration, done <-chan struct{}) error {
	var out []byte
	for {
		select {
		case <-q.signal:
		case <-done:
			return nil
		}
		q.mu.Lock()
		out, q.buf = q.buf, out[:0]
		q.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
}
