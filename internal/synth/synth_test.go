package synth

import (
	"testing"

	"github.com/sensorbus/sensorbus/schema"
)

func TestSynthVerifies(t *testing.T) {
	for _, s := range schema.Builtins() {
		name := s.Name
		g, err := New(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewVerifier(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, seq := range []uint64{0, 1, 999, 1 << 40} {
			m, _ := g.Make(seq, 1<<62) // a time that takes all 9 bytes: 1 to 9
			b, _ := m.MarshalMsg(nil)
			if !v.Check(seq, b) {
				t.Errorf("%s: sample %d does not verify", name, seq)
			}
			if v.Check(seq+1, b) {
				t.Errorf("%s: sample %d verifies as %d", name, seq, seq+1)
			}
			// Any flipped byte is caught (the time field's bytes aside).
			for i := range b {
				c := append([]byte(nil), b...)
				c[i] ^= 0x40
				if v.Check(seq, c) && !timeByte(s, b, i) {
					t.Errorf("%s: sample %d with byte %d flipped still verifies", name, seq, i)
				}
			}
		}
	}
}

// timeByte reports whether byte i of an encoded sample belongs to its
// Time field (the second element: after the one-byte array header).
func timeByte(s *schema.Schema, b []byte, i int) bool {
	return i >= 1 && i <= 9
}
