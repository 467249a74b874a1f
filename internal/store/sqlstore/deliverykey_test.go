package sqlstore

import (
	"sort"
	"testing"
	"time"
)

// TestDeliveryKeys checks what finding a delivery without an index on its id rests on: the
// id the store makes gives back its key, ids sort as their keys do and begin with the
// millisecond (idFloor), and keys only grow, whatever the clock does.
func TestDeliveryKeys(t *testing.T) {
	var k deliveryKeys
	at := time.UnixMilli(1_790_000_000_123)
	first := k.next(at)
	if first != keyFloor(at) {
		t.Errorf("first key %d, want the millisecond's floor %d", first, keyFloor(at))
	}
	if again := k.next(at); again != first+1 {
		t.Errorf("second key in the millisecond %d, want %d", again, first+1)
	}
	if back := k.next(at.Add(-time.Second)); back != first+2 {
		t.Errorf("key with the clock a second back %d, want %d", back, first+2)
	}
	if later := k.next(at.Add(time.Millisecond)); later != keyFloor(at.Add(time.Millisecond)) {
		t.Errorf("key a millisecond later %d, want %d", later, keyFloor(at.Add(time.Millisecond)))
	}

	seen := map[int64]bool{}
	for range 3000 {
		n := k.next(at)
		if seen[n] {
			t.Fatalf("key %d handed out twice", n)
		}
		seen[n] = true
	}

	var keys []int64
	var ids []string
	for n := range seen {
		id := deliveryID(n, [8]byte{byte(n), 1, 2, 3})
		if got := idKey(id); got != n {
			t.Fatalf("idKey(deliveryID(%d)) = %d", n, got)
		}
		if id < idFloor(prefixDelivery, at) || id >= idFloor(prefixDelivery, at.Add(time.Second)) {
			t.Fatalf("id %s of key %d does not begin with its millisecond", id, n)
		}
		keys, ids = append(keys, n), append(ids, id)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	sort.Strings(ids)
	for i := range ids {
		if idKey(ids[i]) != keys[i] {
			t.Fatalf("ids do not sort as their keys: %s is %dth, its key %d, want %d", ids[i], i, idKey(ids[i]), keys[i])
		}
	}

	for _, id := range []string{"", "dlv_", "dlv_given", "int_" + deliveryID(first, [8]byte{})[4:], "dlv_22222222222222222222222222",
		"dlv_" + deliveryID(first, [8]byte{})[4:] + "2", "dlv_!" + deliveryID(first, [8]byte{})[5:]} {
		if got := idKey(id); got != -1 {
			t.Errorf("idKey(%q) = %d, want -1", id, got)
		}
	}
}
