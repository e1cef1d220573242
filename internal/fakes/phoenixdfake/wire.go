package phoenixdfake

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/l402kit/l402kit/backend"
)

func text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

func missing(w http.ResponseWriter, name string) {
	text(w, http.StatusBadRequest, "Request parameter "+name+" is missing")
}

func badType(w http.ResponseWriter, name, typ string) {
	text(w, http.StatusBadRequest, "Request parameter "+name+" couldn't be parsed/converted to "+typ)
}

// formValue reads a form parameter as ktor's receiveParameters does: from
// the url-encoded body. ok is false when the parameter is absent.
func formValue(r *http.Request, name string) (string, bool) {
	vs, ok := r.PostForm[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

func optionalLong(w http.ResponseWriter, r *http.Request, name string) (v int64, present, ok bool) {
	s, present := formValue(r, name)
	if !present {
		return 0, false, true
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		badType(w, name, "integer")
		return 0, true, false
	}
	return v, true, true
}

// nodeError answers a memory node failure as phoenixd answers an exception:
// 400 for a bad request, otherwise 500 with the message.
func (s *Server) nodeError(w http.ResponseWriter, err error) {
	if errors.Is(err, backend.ErrInvalid) {
		text(w, http.StatusBadRequest, err.Error())
		return
	}
	text(w, http.StatusInternalServerError, err.Error())
}
