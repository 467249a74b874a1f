package sqlstore

// dedupKey is how a host's delivery id is indexed for deduplication: a one-to-one rewrite of
// the id that sorts by time when the id carries its time, so that each new delivery's index
// entry lands at the right edge of the index (the pages there are already dirty in the
// batch) instead of on a random page of it, which costs a page written to the WAL and again
// to the database for every delivery. The stored host_id is untouched; only the index sees
// the key.
//
//   - a version-1 UUID (GitHub's X-GitHub-Delivery is one) puts its 60-bit timestamp first,
//     most significant part first: "1" + time_hi + time_mid + time_low + clock_seq + node;
//   - a canonical decimal number of at most 20 digits (a notification counter) is
//     zero-padded, so that it sorts numerically: "n" + 20 digits;
//   - anything else (random UUIDs, time-ordered v6/v7 UUIDs already sorting as text) is kept:
//     "=" + id.
//
// The leading class letter keeps keys of different classes apart, and within a class the
// rewrite only drops characters that the class fixes (dashes, the version digit, padding
// zeros of a number without leading zeros), so two different ids never share a key.
// Migration 00004 computes the same keys in SQL for rows stored before it; a test holds the
// two together. An empty id has no key: such deliveries are never duplicates.
func dedupKey(hostID string) string {
	switch {
	case hostID == "":
		return ""
	case isUUIDv1(hostID):
		s := hostID
		return "1" + s[15:18] + s[9:13] + s[0:8] + s[19:23] + s[24:36]
	case isCanonicalDecimal(hostID):
		const zeros = "00000000000000000000"
		return "n" + zeros[len(hostID):] + hostID
	default:
		return "=" + hostID
	}
}

// isUUIDv1 reports whether s is a UUID in its 36-character text form with version digit 1.
func isUUIDv1(s string) bool {
	if len(s) != 36 || s[14] != '1' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// isCanonicalDecimal reports whether s is "0" or 1 to 20 digits without a leading zero.
func isCanonicalDecimal(s string) bool {
	if len(s) == 0 || len(s) > 20 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
