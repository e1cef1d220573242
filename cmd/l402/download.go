package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// download writes a body to a file through FILE.part, renamed to FILE once
// complete. A .part left by an interrupted run is resumed with a Range
// request; a server that ignores ranges (200) sends it all again.
type download struct {
	path, part string
	offset     int64
	complete   bool
}

func startDownload(path string, req *http.Request) (*download, error) {
	d := &download{path: path, part: path + ".part"}
	fi, err := os.Stat(d.part)
	switch {
	case err == nil && fi.Size() > 0:
		d.offset = fi.Size()
		req.Header.Set("Range", "bytes="+strconv.FormatInt(d.offset, 10)+"-")
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return d, nil
}

// write stores resp's body. Error statuses leave the file alone, except
// 416 to a resumed request whose part already holds the whole body.
func (d *download) write(resp *http.Response, progress bool, stderr io.Writer) error {
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && d.offset > 0 {
		// "bytes */SIZE": the part is complete when it has SIZE bytes.
		if total, ok := strings.CutPrefix(resp.Header.Get("Content-Range"), "bytes */"); ok && total == strconv.FormatInt(d.offset, 10) {
			d.complete = true
		}
		return nil
	}
	if resp.StatusCode >= 400 {
		return nil
	}
	flags, start, total := os.O_WRONLY|os.O_CREATE|os.O_TRUNC, int64(0), resp.ContentLength
	if resp.StatusCode == http.StatusPartialContent {
		first, size, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return err
		}
		if first != d.offset {
			return fmt.Errorf("server resumed at byte %d, the partial file has %d", first, d.offset)
		}
		flags, start, total = os.O_WRONLY|os.O_APPEND, first, size
	}
	f, err := os.OpenFile(d.part, flags, 0o644)
	if err != nil {
		return err
	}
	var w io.Writer = f
	if progress {
		w = &progressWriter{w: f, out: stderr, done: start, total: total}
	}
	_, err = io.Copy(w, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if progress {
		w.(*progressWriter).final()
	}
	d.complete = true
	return nil
}

// finish renames the complete part to its name.
func (d *download) finish() error {
	if !d.complete {
		return fmt.Errorf("download of %s is incomplete; run again to resume", d.path)
	}
	return os.Rename(d.part, d.path)
}

// parseContentRange reads "bytes FIRST-LAST/SIZE" (SIZE may be "*",
// returned as -1).
func parseContentRange(v string) (first, size int64, err error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	rng, total, ok2 := strings.Cut(rest, "/")
	a, _, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("unreadable Content-Range %q", v)
	}
	if first, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("unreadable Content-Range %q", v)
	}
	size = -1
	if total != "*" {
		if size, err = strconv.ParseInt(total, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("unreadable Content-Range %q", v)
		}
	}
	return first, size, nil
}

// progressWriter reports a download's progress on standard error: at each
// tenth of a known size, or each MiB of an unknown one.
type progressWriter struct {
	w           io.Writer
	out         io.Writer
	done, total int64
	next        int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	step := int64(1 << 20)
	if p.total > 0 {
		step = max(p.total/10, 1)
	}
	if p.next == 0 {
		p.next = (p.done/step + 1) * step
		if p.done < step {
			p.next = step
		}
	}
	if p.done >= p.next {
		p.report()
		p.next = (p.done/step + 1) * step
	}
	return n, err
}

func (p *progressWriter) report() {
	if p.total > 0 {
		fmt.Fprintf(p.out, "progress: %d/%d bytes (%d%%)\n", p.done, p.total, p.done*100/p.total)
	} else {
		fmt.Fprintf(p.out, "progress: %d bytes\n", p.done)
	}
}

func (p *progressWriter) final() {
	if p.total <= 0 || p.done != p.total {
		p.report()
	}
}

// progressOn decides whether to report progress: "on", "off", or "auto"
// (when standard error is a terminal).
func progressOn(setting string) bool {
	switch setting {
	case "on", "true", "1":
		return true
	case "auto":
		fi, err := os.Stderr.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0
	}
	return false
}
