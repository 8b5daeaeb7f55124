package region

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"

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
