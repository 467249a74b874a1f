// Package sqlitevfs owns a SQLite VFS that wraps the default one and gathers the writes SQLite
// makes to a database's write-ahead log, and a checkpoint's writes to the database file,
// into one system call each where they are contiguous.
//
// SQLite writes each WAL frame with two pwrite calls (its 24-byte header, then the page), so
// a group commit of ~15 frames costs ~30 system calls; a checkpoint writes one page per call.
// Through this VFS a commit's frames reach the file in one pwrite, before SQLite publishes
// the commit to other connections: pending bytes are written before any other operation on
// the file, and a WAL's pending bytes before any operation on its database file, which is
// where SQLite's shared-memory barrier and locks (the commit's publication and its end) go.
// Nothing is held past the call that ends a transaction, so a flush of the file from outside
// SQLite (the store's syncWAL) after COMMIT covers the commit, as without this VFS.
//
// A checkpoint's held pages are written when it reports that it is done, before it syncs the
// database file and records how far it copied; a failed write fails that sync. Connections
// that checkpoint through this VFS must therefore not run with synchronous=OFF, which skips
// the sync (the store's run with NORMAL).
//
// Only the main database file and its WAL are wrapped; journals and temporary files are the
// default VFS's own. The VFS is registered per store under its own name and unregistered
// when the store closes, so nothing here is process-wide but SQLite's registry itself.
package sqlitevfs

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// maxPending bounds the bytes held for one file; a write that would pass it writes what is
// held first. A group commit of deliveries is ~120 KiB; a large transaction spills in steps.
const maxPending = 1 << 20

// firstPending is the buffer first allocated for a file's pending bytes; it doubles as
// needed, up to maxPending.
const firstPending = 256 << 10

// File kinds.
const (
	kindDB  = 1
	kindWAL = 2
)

// file is what this VFS's xOpen makes of the sqlite3_file SQLite gives it, for a main
// database or a WAL: a header, then the wrapped VFS's own file. It lives in memory SQLite
// allocated, so it holds no Go pointers.
type file struct {
	methods uintptr // sqlite3_file.pMethods: this VFS's io methods
	real    uintptr // the wrapped file, at realOffset
	ios     uintptr // the wrapped file's io methods
	stats   uintptr // its VFS's *counters
	kind    int32
	// WAL only: held is a frame header waiting for its page (holdsHeader), of a commit frame
	// (holdsCommit), whose page is written with everything held as soon as it comes.
	holdsHeader bool
	holdsCommit bool
	_           [2]byte
	// link: for a WAL, its connection's database file; for a database file, its open WAL.
	// SQLite uses one connection from one goroutine at a time, so both are used together.
	link    uintptr
	buf     uintptr // pending bytes (libc memory), or 0
	bufCap  int64
	pendOff int64 // file offset of buf's first byte
	pendLen int64
}

// realOffset is where the wrapped file starts within a wrapped sqlite3_file (8-aligned).
const realOffset = (unsafe.Sizeof(file{}) + 7) &^ 7

// vfsBlock is the memory this VFS registers with SQLite: the sqlite3_vfs, what it wraps and
// the io methods of its files.
type vfsBlock struct {
	vfs     sqlite3.Tsqlite3_vfs
	real    uintptr // the wrapped sqlite3_vfs
	methods sqlite3.Tsqlite3_io_methods
	stats   counters
}

// counters are Stats as the VFS's files count them: the writes SQLite asked for and those
// made, by kind of file (index kind-1), and WALLate.
type counters struct {
	asked, made [2]atomic.Int64
	walLate     atomic.Int64
}

// Stats counts the writes SQLite asked for, and the writes this VFS made of them, to the
// write-ahead logs and database files opened through it.
type Stats struct {
	WALWrites, WALWritten int64
	DBWrites, DBWritten   int64
	// WALLate counts the times a WAL's held frames were written only as SQLite published
	// its commit, not by the write of the commit's last frame: zero, unless SQLite writes
	// its log in a way this VFS does not know.
	WALLate int64
}

// Stats reads the counts so far.
func (v *VFS) Stats() Stats {
	c := &(*vfsBlock)(ptr(v.block)).stats
	return Stats{
		DBWrites: c.asked[kindDB-1].Load(), DBWritten: c.made[kindDB-1].Load(),
		WALWrites: c.asked[kindWAL-1].Load(), WALWritten: c.made[kindWAL-1].Load(),
		WALLate: c.walLate.Load(),
	}
}

// VFS is a registered instance of this VFS.
type VFS struct {
	name  string
	block uintptr // *vfsBlock, libc memory
	cname uintptr
}

// Name is the name to open databases with (the DSN's vfs parameter).
func (v *VFS) Name() string { return v.name }

// Register registers a new instance of the VFS over SQLite's default VFS, under a name of
// its own.
func Register() (*VFS, error) {
	tls := libc.NewTLS()
	defer tls.Close()
	real := sqlite3.Xsqlite3_vfs_find(tls, 0)
	if real == 0 {
		return nil, fmt.Errorf("register sqlite vfs: no default vfs")
	}
	block := libc.Xmalloc(tls, uint64(unsafe.Sizeof(vfsBlock{})))
	if block == 0 {
		return nil, fmt.Errorf("register sqlite vfs: out of memory")
	}
	b := (*vfsBlock)(ptr(block))
	*b = vfsBlock{vfs: *(*sqlite3.Tsqlite3_vfs)(ptr(real)), real: real}
	name := fmt.Sprintf("forgeway-%x", block)
	cname, err := libc.CString(name)
	if err != nil {
		libc.Xfree(tls, block)
		return nil, fmt.Errorf("register sqlite vfs: %w", err)
	}
	b.vfs.FzName = cname
	b.vfs.FpNext = 0
	b.vfs.FszOsFile = b.vfs.FszOsFile + int32(realOffset)
	b.vfs.FxOpen = funcPtr(xOpen)
	b.methods = sqlite3.Tsqlite3_io_methods{
		FiVersion:               3,
		FxClose:                 funcPtr(xClose),
		FxRead:                  funcPtr(xRead),
		FxWrite:                 funcPtr(xWrite),
		FxTruncate:              funcPtr(xTruncate),
		FxSync:                  funcPtr(xSync),
		FxFileSize:              funcPtr(xFileSize),
		FxLock:                  funcPtr(xLock),
		FxUnlock:                funcPtr(xUnlock),
		FxCheckReservedLock:     funcPtr(xCheckReservedLock),
		FxFileControl:           funcPtr(xFileControl),
		FxSectorSize:            funcPtr(xSectorSize),
		FxDeviceCharacteristics: funcPtr(xDeviceCharacteristics),
		FxShmMap:                funcPtr(xShmMap),
		FxShmLock:               funcPtr(xShmLock),
		FxShmBarrier:            funcPtr(xShmBarrier),
		FxShmUnmap:              funcPtr(xShmUnmap),
		FxFetch:                 funcPtr(xFetch),
		FxUnfetch:               funcPtr(xUnfetch),
	}
	if rc := sqlite3.Xsqlite3_vfs_register(tls, block, 0); rc != sqlite3.SQLITE_OK {
		libc.Xfree(tls, cname)
		libc.Xfree(tls, block)
		return nil, fmt.Errorf("register sqlite vfs: result code %d", rc)
	}
	return &VFS{name: name, block: block, cname: cname}, nil
}

// Close unregisters the VFS. Every database opened through it must be closed first.
func (v *VFS) Close() error {
	if v == nil || v.block == 0 {
		return nil
	}
	tls := libc.NewTLS()
	defer tls.Close()
	rc := sqlite3.Xsqlite3_vfs_unregister(tls, v.block)
	libc.Xfree(tls, v.cname)
	libc.Xfree(tls, v.block)
	v.block, v.cname = 0, 0
	if rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("unregister sqlite vfs %s: result code %d", v.name, rc)
	}
	return nil
}

// ptr turns an address SQLite or libc gave into a pointer. The memory is not Go's, so the
// garbage collector neither moves nor frees it.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// funcPtr is what modernc's SQLite takes for a C function pointer: the Go func value's
// address. Only top-level functions are passed, whose values are static.
func funcPtr(f any) uintptr { return (*[2]uintptr)(unsafe.Pointer(&f))[1] }

func fileAt(p uintptr) *file { return (*file)(ptr(p)) }

func (f *file) realMethods() *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(ptr(f.ios))
}

// xOpen opens main databases and WALs wrapped, and every other file as the wrapped VFS does.
func xOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	b := (*vfsBlock)(ptr(pVfs))
	real := (*sqlite3.Tsqlite3_vfs)(ptr(b.real))
	kind := int32(0)
	switch {
	case flags&sqlite3.SQLITE_OPEN_MAIN_DB != 0:
		kind = kindDB
	case flags&sqlite3.SQLITE_OPEN_WAL != 0:
		kind = kindWAL
	}
	if kind == 0 {
		return callOpen(tls, real.FxOpen, b.real, zName, pFile, flags, pOutFlags)
	}
	f := fileAt(pFile)
	*f = file{kind: kind, real: pFile + realOffset, stats: uintptr(unsafe.Pointer(&b.stats))}
	if rc := callOpen(tls, real.FxOpen, b.real, zName, f.real, flags, pOutFlags); rc != sqlite3.SQLITE_OK {
		f.methods = 0 // SQLite does not close a file whose open failed
		return rc
	}
	f.ios = *(*uintptr)(ptr(f.real))
	if f.ios == 0 || f.realMethods().FiVersion < 3 {
		// A wrapped file without the version-3 methods (shared memory, fetch) is not
		// the unix VFS's; it is not wrapped.
		closeReal(tls, f)
		f.methods = 0
		return sqlite3.SQLITE_CANTOPEN
	}
	f.methods = uintptr(unsafe.Pointer(&b.methods))
	if kind == kindWAL {
		f.linkDB(pFile, f.methods)
	}
	return sqlite3.SQLITE_OK
}

// linkDB finds the database file of the connection opening this WAL. SQLite's wal.c
// allocates a WAL's sqlite3_file right after its Wal object, which names the database file:
// when that holds and the database file is this VFS's, the two are linked, so that the
// database file's shared-memory calls write the WAL's pending bytes first. Unlinked, a WAL
// holds nothing (xWrite writes through).
func (f *file) linkDB(self, methods uintptr) {
	w := (*sqlite3.TWal)(ptr(self - unsafe.Sizeof(sqlite3.TWal{})))
	if w.FpWalFd != self || w.FpDbFd == 0 {
		return
	}
	db := fileAt(w.FpDbFd)
	if db.methods != methods || db.kind != kindDB || db.link != 0 {
		return
	}
	db.link, f.link = self, w.FpDbFd
}

func callOpen(tls *libc.TLS, fn, vfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	return (*(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&fn)))(tls, vfs, zName, pFile, flags, pOutFlags)
}

func closeReal(tls *libc.TLS, f *file) int32 {
	fn := f.realMethods().FxClose
	return (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real)
}

// settle writes what f holds, and, for a database file, what its WAL holds: every call but
// a contiguous write does this first.
func (f *file) settle(tls *libc.TLS) int32 {
	if rc := f.flushWAL(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return f.flush(tls)
}

// flushWAL writes what a database file's WAL holds; for a WAL it does nothing.
func (f *file) flushWAL(tls *libc.TLS) int32 {
	if f.kind != kindDB || f.link == 0 {
		return sqlite3.SQLITE_OK
	}
	return fileAt(f.link).flush(tls)
}

// flush writes f's pending bytes in one call of the wrapped xWrite. On failure they stay
// pending: the next call tries again, and reports it.
func (f *file) flush(tls *libc.TLS) int32 {
	f.holdsHeader, f.holdsCommit = false, false
	if f.pendLen == 0 {
		return sqlite3.SQLITE_OK
	}
	for done := int64(0); done < f.pendLen; {
		n := min(f.pendLen-done, maxWrite)
		if rc := f.writeReal(tls, f.buf+uintptr(done), int32(n), f.pendOff+done); rc != sqlite3.SQLITE_OK {
			if done > 0 { // keep what is left
				libc.Xmemmove(tls, f.buf, f.buf+uintptr(done), uint64(f.pendLen-done))
				f.pendOff += done
				f.pendLen -= done
			}
			return rc
		}
		done += n
	}
	f.pendLen = 0
	return sqlite3.SQLITE_OK
}

// maxWrite is the most the unix VFS writes in one call: it masks a write's length with
// 0x1ffff (seekAndWriteFd).
const maxWrite = 0x1ffff

func (f *file) writeReal(tls *libc.TLS, p uintptr, n int32, off int64) int32 {
	f.counters().made[f.kind-1].Add(1)
	fn := f.realMethods().FxWrite
	return (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&fn)))(tls, f.real, p, n, off)
}

func (f *file) counters() *counters { return (*counters)(ptr(f.stats)) }

// walFrameHeader is the size of a WAL frame's header; its bytes 4-7 are the database's size
// in pages after a commit for a commit's last frame, and zero for every other frame.
const walFrameHeader = 24

// xWrite holds contiguous writes. For a WAL it holds only whole frames, each header then its
// page, and writes them all with the page of the commit's last frame, so that a failure is
// reported by the write that ends the commit, as SQLite's own VFS reports it, before the
// commit is published. A commit frame's header with nothing held before it (a one-frame
// commit, or the rewritten checksums of a transaction that overwrote its own frames) is
// written at once: nothing may follow it before the commit is published.
func xWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := fileAt(pFile)
	f.counters().asked[f.kind-1].Add(1)
	if rc := f.flushWAL(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	n := int64(iAmt)
	next := f.pendLen > 0 && iOfst == f.pendOff+f.pendLen && f.pendLen+n <= maxPending
	switch {
	case f.kind == kindDB:
		if !next {
			if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
				return rc
			}
			if n > maxPending/2 {
				return f.writeReal(tls, zBuf, iAmt, iOfst)
			}
		}
		return f.hold(tls, zBuf, n, iOfst)
	case f.link == 0: // a WAL whose database file is not known: nothing is held
		return f.writeReal(tls, zBuf, iAmt, iOfst)
	case next && f.holdsHeader: // the page of the frame whose header is held
		commit := f.holdsCommit
		if rc := f.hold(tls, zBuf, n, iOfst); rc != sqlite3.SQLITE_OK {
			return rc
		}
		f.holdsHeader, f.holdsCommit = false, false
		if commit {
			return f.flush(tls)
		}
		return sqlite3.SQLITE_OK
	case n == walFrameHeader && !f.holdsHeader && (next || f.pendLen == 0):
		hdr := unsafe.Slice((*byte)(ptr(zBuf)), walFrameHeader)
		commit := hdr[4]|hdr[5]|hdr[6]|hdr[7] != 0
		if commit && f.pendLen == 0 {
			return f.writeReal(tls, zBuf, iAmt, iOfst)
		}
		if rc := f.hold(tls, zBuf, n, iOfst); rc != sqlite3.SQLITE_OK {
			return rc
		}
		f.holdsHeader, f.holdsCommit = true, commit
		return sqlite3.SQLITE_OK
	default:
		if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
			return rc
		}
		return f.writeReal(tls, zBuf, iAmt, iOfst)
	}
}

// hold appends n bytes at zBuf, for file offset off, to what f holds (which ends at off, or
// is empty). When no memory can be had, it writes instead.
func (f *file) hold(tls *libc.TLS, zBuf uintptr, n, off int64) int32 {
	if need := f.pendLen + n; need > f.bufCap {
		c := max(f.bufCap*2, firstPending)
		for c < need {
			c *= 2
		}
		p := libc.Xrealloc(tls, f.buf, uint64(c))
		if p == 0 {
			if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
				return rc
			}
			return f.writeReal(tls, zBuf, int32(n), off)
		}
		f.buf, f.bufCap = p, c
	}
	if f.pendLen == 0 {
		f.pendOff = off
	}
	copy(unsafe.Slice((*byte)(ptr(f.buf+uintptr(f.pendLen))), n), unsafe.Slice((*byte)(ptr(zBuf)), n))
	f.pendLen += n
	return sqlite3.SQLITE_OK
}

func xClose(tls *libc.TLS, pFile uintptr) int32 {
	f := fileAt(pFile)
	rc := f.settle(tls)
	if f.link != 0 { // the other file of the pair forgets this one
		fileAt(f.link).link = 0
		f.link = 0
	}
	if crc := closeReal(tls, f); rc == sqlite3.SQLITE_OK {
		rc = crc
	}
	if f.buf != 0 {
		libc.Xfree(tls, f.buf)
		f.buf, f.bufCap = 0, 0
	}
	return rc
}

func xRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxRead
	return (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&fn)))(tls, f.real, zBuf, iAmt, iOfst)
}

func xTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxTruncate
	return (*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&fn)))(tls, f.real, size)
}

func xSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxSync
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&fn)))(tls, f.real, flags)
}

func xFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxFileSize
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real, pSize)
}

// intCall forwards the methods that take the file and one int.
func intCall(tls *libc.TLS, pFile uintptr, arg int32, pick func(*sqlite3.Tsqlite3_io_methods) uintptr) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := pick(f.realMethods())
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&fn)))(tls, f.real, arg)
}

func xLock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	return intCall(tls, pFile, lock, func(m *sqlite3.Tsqlite3_io_methods) uintptr { return m.FxLock })
}

func xUnlock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	return intCall(tls, pFile, lock, func(m *sqlite3.Tsqlite3_io_methods) uintptr { return m.FxUnlock })
}

func xCheckReservedLock(tls *libc.TLS, pFile, pResOut uintptr) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxCheckReservedLock
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real, pResOut)
}

func xFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxFileControl
	return (*(*func(*libc.TLS, uintptr, int32, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real, op, pArg)
}

// xSectorSize and xDeviceCharacteristics only read: nothing pending matters to them.
func xSectorSize(tls *libc.TLS, pFile uintptr) int32 {
	f := fileAt(pFile)
	fn := f.realMethods().FxSectorSize
	return (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real)
}

func xDeviceCharacteristics(tls *libc.TLS, pFile uintptr) int32 {
	f := fileAt(pFile)
	fn := f.realMethods().FxDeviceCharacteristics
	return (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real)
}

func xShmMap(tls *libc.TLS, pFile uintptr, iPg, pgsz, bExtend int32, pp uintptr) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxShmMap
	return (*(*func(*libc.TLS, uintptr, int32, int32, int32, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real, iPg, pgsz, bExtend, pp)
}

func xShmLock(tls *libc.TLS, pFile uintptr, offset, n, flags int32) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxShmLock
	return (*(*func(*libc.TLS, uintptr, int32, int32, int32) int32)(unsafe.Pointer(&fn)))(tls, f.real, offset, n, flags)
}

// xShmBarrier is where SQLite publishes a commit (between the two copies of the WAL index
// header): the WAL's frames must be in the file by then. It cannot report an error: a
// failed write stays pending, and the next call (the write lock's release, at the latest)
// tries again and reports it.
func xShmBarrier(tls *libc.TLS, pFile uintptr) {
	f := fileAt(pFile)
	if f.kind == kindDB && f.link != 0 && fileAt(f.link).pendLen > 0 {
		f.counters().walLate.Add(1)
	}
	_ = f.settle(tls)
	fn := f.realMethods().FxShmBarrier
	(*(*func(*libc.TLS, uintptr))(unsafe.Pointer(&fn)))(tls, f.real)
}

func xShmUnmap(tls *libc.TLS, pFile uintptr, deleteFlag int32) int32 {
	return intCall(tls, pFile, deleteFlag, func(m *sqlite3.Tsqlite3_io_methods) uintptr { return m.FxShmUnmap })
}

func xFetch(tls *libc.TLS, pFile uintptr, iOfst int64, iAmt int32, pp uintptr) int32 {
	f := fileAt(pFile)
	if rc := f.settle(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	fn := f.realMethods().FxFetch
	return (*(*func(*libc.TLS, uintptr, int64, int32, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real, iOfst, iAmt, pp)
}

func xUnfetch(tls *libc.TLS, pFile uintptr, iOfst int64, p uintptr) int32 {
	f := fileAt(pFile)
	fn := f.realMethods().FxUnfetch
	return (*(*func(*libc.TLS, uintptr, int64, uintptr) int32)(unsafe.Pointer(&fn)))(tls, f.real, iOfst, p)
}
