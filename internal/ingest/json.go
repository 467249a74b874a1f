package ingest

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// writeAccepted answers 202 with an Accepted body. Every delivery gets one: it is written by
// hand, as encoding/json would write it, when the id needs no escaping (the store's ids never
// do), and by encoding/json otherwise.
func writeAccepted(w http.ResponseWriter, a Accepted) {
	if !plainID(a.DeliveryID) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(a)
		return
	}
	var arr [128]byte
	b := append(arr[:0], `{"delivery_id":"`...)
	b = append(b, a.DeliveryID...)
	b = append(b, `","duplicate":`...)
	b = strconv.AppendBool(b, a.Duplicate)
	b = append(b, "}\n"...)
	if fw, ok := w.(*fastWriter); ok { // the webhook listener: no header map to fill
		fw.writeJSON(http.StatusAccepted, b)
		return
	}
	// No Content-Length header: net/http sends one, without a header map entry, for a
	// small body written by a handler that then returns.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
}

// plainID reports whether id is short and holds only letters, digits, '_' and '-'.
func plainID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
