package proxy

import "testing"

func TestBufferPool(t *testing.T) {
	p := &bufferPool{}
	b := p.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("buffer of %d bytes", len(b))
	}
	p.Put(b)
	p.Put(make([]byte, 10)) // not ours: dropped, never handed out
	for range 3 {
		if b := p.Get(); len(b) != copyBufferSize {
			t.Fatalf("buffer of %d bytes after Put", len(b))
		}
	}
	if n := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); n > 0 {
		t.Errorf("%v allocations per Get+Put", n)
	}
}
