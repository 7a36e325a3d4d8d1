package httpapi_test

import (
	"bytes"
	"encoding/json"
)

// read returns the server's next frame: a message may join several frames,
// newline-separated (DESIGN.md §4), and clients split them.
func (c *wsClient) read() ([]byte, error) {
	for len(c.pending) == 0 {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		c.pending = bytes.Split(msg, []byte("\n"))
	}
	f := c.pending[0]
	c.pending = c.pending[1:]
	return f, nil
}

func (c *wsClient) readJSON(v any) error {
	data, err := c.read()
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
