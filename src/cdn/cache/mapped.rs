//! Large cached bodies in files of their own, so that plain-HTTP hits can `sendfile` them
//! (see [`crate::cdn::zero_copy`]) instead of copying each one from user memory into the
//! socket, as nginx does with its cache files.
//!
//! A body of at least [`MAPPED_MIN_LEN`] bytes is written once into a file, mapped read-only
//! and handed out as a [`Bytes`] whose owner unmaps and closes it when the last clone goes.
//! A registry of the live mappings (address range → file, see [`find`]) lets the connection
//! writer recognise a slice of such a body by its address alone, as hyper hands it over.
//!
//! Where the files live is [`BodyFiles`]' choice:
//! - `cdn.cache_body_dir` set: anonymous files (`O_TMPFILE | O_EXCL`: no name, never
//!   linkable, gone when closed) in that folder. On ext4 or XFS their page cache is made of
//!   large folios, so `sendfile` moves a 100 KiB body in a few page references; this is the
//!   fast choice, at the price of the kernel writing dirty pages back to that disk.
//! - unset: `memfd`s, sealed against any change. Memory only, but shared memory comes in
//!   4 KiB pages (unless shmem huge pages are on), and `sendfile` pays for each one: about
//!   10% more CPU per 100 KiB hit than the folder.
//!
//! The file is written on the filling task, as the heap copy it replaces was: a memory copy
//! into the page cache, which the kernel may slow down only when dirty pages pile up past
//! its writeback limits.
//!
//! A file is never written again once published: a `sendfile` still in the socket's queue
//! references its pages. Memfds are sealed so the kernel enforces it; folder files have no
//! name and their descriptor never leaves this module.
//!
//! Each mapped body holds a file descriptor and a mapping, so at most half of the soft
//! `RLIMIT_NOFILE` and half of `vm.max_map_count` are used for them; past that, and whenever
//! a file or mapping cannot be made (a full disk), the body stays on the heap (counted in
//! [`fallbacks`]).

use crate::app::dir_lock::DirLock;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use arc_swap::{ArcSwap, Guard};
use bytes::{Bytes, BytesMut};
use tracing::debug;

/// Bodies at least this long are mapped; smaller ones stay on the heap (a file, a mapping
/// and a registry update would cost more than the copy they save).
pub const MAPPED_MIN_LEN: usize = 64 * 1024;

/// Slices per `pwritev` (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Mapped bodies alive now.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Large bodies left on the heap because no file or mapping could be made.
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// How many mapped bodies (each an open descriptor and a mapping) may exist at once: half
/// the soft limit on open files and half of `vm.max_map_count`, leaving the rest to
/// connections, the allocator and everything else.
static FD_BUDGET: LazyLock<usize> = LazyLock::new(fd_budget);

/// Where large bodies are written: a folder's anonymous files, or memory files.
#[derive(Debug)]
pub struct BodyFiles {
    /// The folder (opened once) and its path for messages; `None`: memfds.
    dir: Option<(OwnedFd, PathBuf)>,
    /// Keeps a second process from sharing the folder.
    _lock: Option<DirLock>,
}

impl BodyFiles {
    /// Memory files (`memfd`).
    pub fn in_memory() -> BodyFiles {
        BodyFiles {
            dir: None,
            _lock: None,
        }
    }

    /// Anonymous files in `dir`, which is created when missing. One file is made and dropped
    /// to prove the folder takes them, so a wrong path fails at start, not on every fill.
    ///
    /// # Errors
    /// The folder cannot be created or opened, or its filesystem has no `O_TMPFILE`.
    pub fn in_dir(dir: &Path) -> io::Result<BodyFiles> {
        let context = |e: io::Error, what: &str| {
            io::Error::new(
                e.kind(),
                format!("cdn.cache_body_dir {}: {what}: {e}", dir.display()),
            )
        };
        std::fs::create_dir_all(dir).map_err(|e| context(e, "cannot create it"))?;
        let lock = DirLock::acquire(dir).map_err(io::Error::other)?;
        let opened = open_dir(dir).map_err(|e| context(e, "cannot open it"))?;
        let files = BodyFiles {
            dir: Some((opened, dir.into())),
            _lock: Some(lock),
        };
        files
            .new_file()
            .map_err(|e| context(e, "cannot make an anonymous file (O_TMPFILE) there"))?;
        Ok(files)
    }

    /// `chunks` joined into one `Bytes`: a mapped body when the total is large and mapping
    /// works, else one heap buffer (a single chunk is returned as it is).
    pub fn join(&self, chunks: &[Bytes]) -> Bytes {
        let len: usize = chunks.iter().map(Bytes::len).sum();
        if len >= MAPPED_MIN_LEN
            && let Some(mapped) = self.map(chunks, len)
        {
            return mapped;
        }
        match chunks {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut joined = BytesMut::with_capacity(len);
                for chunk in many {
                    joined.extend_from_slice(chunk);
                }
                joined.freeze()
            }
        }
    }

    /// `body` as a mapped body when it is large (and mapping works), else as it is.
    pub fn adopt(&self, body: Bytes) -> Bytes {
        if body.len() >= MAPPED_MIN_LEN
            && let Some(mapped) = self.map(std::slice::from_ref(&body), body.len())
        {
            return mapped;
        }
        body
    }

    fn map(&self, chunks: &[Bytes], len: usize) -> Option<Bytes> {
        if LIVE.fetch_add(1, Ordering::Relaxed) >= *FD_BUDGET {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            FALLBACKS.fetch_add(1, Ordering::Relaxed);
            debug!(
                "body of {len} bytes kept on the heap: {} mapped bodies open",
                *FD_BUDGET
            );
            return None;
        }
        match self
            .new_file()
            .and_then(|(file, sealable)| MappedBody::create(file, sealable, chunks, len))
        {
            Ok(body) => Some(Bytes::from_owner(body)),
            Err(e) => {
                LIVE.fetch_sub(1, Ordering::Relaxed);
                FALLBACKS.fetch_add(1, Ordering::Relaxed);
                match &self.dir {
                    Some((_, path)) => debug!(
                        "body of {len} bytes kept on the heap: no file in {}: {e}",
                        path.display()
                    ),
                    None => debug!("body of {len} bytes kept on the heap: no memory file: {e}"),
                }
                None
            }
        }
    }

    /// A new empty file, and whether it takes seals (memfds do).
    #[cfg(target_os = "linux")]
    fn new_file(&self) -> io::Result<(OwnedFd, bool)> {
        use rustix::fs::{MemfdFlags, Mode, OFlags};
        match &self.dir {
            // O_EXCL: the file can never be given a name (linkat), so nobody else opens it.
            Some((dir, _)) => Ok((
                rustix::fs::openat(
                    dir,
                    c".",
                    OFlags::TMPFILE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC,
                    Mode::RUSR | Mode::WUSR,
                )?,
                false,
            )),
            None => Ok((
                rustix::fs::memfd_create(
                    c"edgewise-body",
                    MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
                )?,
                true,
            )),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn new_file(&self) -> io::Result<(OwnedFd, bool)> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[cfg(target_os = "linux")]
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(
        dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

#[cfg(not(target_os = "linux"))]
fn open_dir(_dir: &Path) -> io::Result<OwnedFd> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Mapped bodies alive now.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Large bodies kept on the heap because mapping them failed or the budget was spent.
pub fn fallbacks() -> u64 {
    FALLBACKS.load(Ordering::Relaxed)
}

fn fd_budget() -> usize {
    #[cfg(target_os = "linux")]
    {
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map_or(u64::MAX, |soft| soft / 2);
        // Each body is also a mapping of its own, and the process may have at most
        // vm.max_map_count of them (malloc and thread stacks need theirs).
        let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(65_530)
            / 2;
        usize::try_from(files.min(maps)).unwrap_or(usize::MAX)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The owner of a mapped body: a read-only shared mapping of its file.
struct MappedBody {
    addr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and its file never written again (see `create`), so the
// bytes never change while it exists; sharing or moving a pointer to immutable memory between threads
// is sound, and `Drop` (the only place that unmaps) runs once, on whichever thread.
unsafe impl Send for MappedBody {}
// SAFETY: as for `Send`: `&MappedBody` only gives out shared reads of immutable bytes.
unsafe impl Sync for MappedBody {}

impl MappedBody {
    /// Writes `chunks` (`len` bytes in all, at least one) into the empty `fd`, seals it
    /// when it can be, maps it and registers the mapping.
    #[cfg(target_os = "linux")]
    fn create(fd: OwnedFd, sealable: bool, chunks: &[Bytes], len: usize) -> io::Result<MappedBody> {
        use rustix::fs::SealFlags;
        use rustix::mm::{MapFlags, ProtFlags};

        rustix::fs::ftruncate(&fd, len as u64)?;
        // One pwritev for many chunks: the page cache sizes its folios by the length of the
        // write, and large folios are what make `sendfile` cheap (see the module docs).
        let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
        let mut rest = &mut slices[..];
        let mut at = 0u64;
        while !rest.is_empty() {
            let batch = &rest[..rest.len().min(IOV_MAX)];
            match rustix::io::pwritev(&fd, batch, at) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    IoSlice::advance_slices(&mut rest, n);
                    at += n as u64;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if sealable {
            // From here on the file cannot change (nor its seals): not by us, not by anyone.
            rustix::fs::fcntl_add_seals(
                &fd,
                SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
            )?;
        }
        // SAFETY: a null hint lets the kernel choose a fresh range, so no existing memory is
        // affected; `len` is the file's size and non-zero. The mapping is read-only and the
        // file is written by nobody from here on (sealed, or nameless and private to this
        // module), so the `&[u8]` handed out by `as_ref` is never mutated.
        let addr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED | MapFlags::POPULATE,
                &fd,
                0,
            )?
        };
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(io::ErrorKind::InvalidData)?;
        REGISTRY.insert(&Region {
            start: addr.as_ptr() as usize,
            len,
            fd: Arc::new(fd),
        });
        Ok(MappedBody { addr, len })
    }

    #[cfg(not(target_os = "linux"))]
    fn create(
        _fd: OwnedFd,
        _sealable: bool,
        _chunks: &[Bytes],
        _len: usize,
    ) -> io::Result<MappedBody> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl AsRef<[u8]> for MappedBody {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `addr..addr + len` is a live read-only mapping until `drop`, which needs
        // `&mut self` and so cannot overlap this borrow; its bytes never change.
        unsafe { std::slice::from_raw_parts(self.addr.as_ptr(), self.len) }
    }
}

impl Drop for MappedBody {
    fn drop(&mut self) {
        // Out of the registry first, so no writer finds the range once it is unmapped. The
        // registry's `Arc` keeps the file open for a writer still using an older snapshot;
        // pages already queued by `sendfile` hold their own references.
        REGISTRY.remove(self.addr.as_ptr() as usize, self.len);
        #[cfg(target_os = "linux")]
        // SAFETY: exactly the range `create` mapped; the last `Bytes` referring to it is
        // gone (this is its owner's drop), so nothing reads it any more.
        if let Err(e) = unsafe { rustix::mm::munmap(self.addr.as_ptr().cast(), self.len) } {
            debug!("munmap of a cached body: {e}");
        }
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

// --- the registry ---------------------------------------------------------------------------

/// One live mapping: its address range and its file.
#[derive(Clone)]
struct Region {
    start: usize,
    len: usize,
    fd: Arc<OwnedFd>,
}

/// Live mappings, in shards by address so that a fill or a drop copies only a small list.
/// A mapping is listed in the shard of every `BUCKET`-aligned block it overlaps, so the shard
/// of any address in it lists it. Readers (every plain-HTTP write) load a shard's list
/// without locking; `insert` and `remove` copy the lists they change under a lock.
struct Registry {
    shards: [ArcSwap<Vec<Region>>; SHARDS],
    edit: Mutex<()>,
}

const SHARDS: usize = 64;
/// log2 of the block size (2 MiB) by which addresses are spread over the shards.
const BUCKET_SHIFT: u32 = 21;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    shards: std::array::from_fn(|_| ArcSwap::from_pointee(Vec::new())),
    edit: Mutex::new(()),
});

impl Registry {
    fn shard_of(addr: usize) -> usize {
        (addr >> BUCKET_SHIFT) % SHARDS
    }

    /// The shards a mapping of `len` bytes at `start` is listed in.
    fn shards_of(start: usize, len: usize) -> impl Iterator<Item = usize> {
        let first = start >> BUCKET_SHIFT;
        let last = (start + len - 1) >> BUCKET_SHIFT;
        (first..=last.min(first + SHARDS - 1)).map(|bucket| bucket % SHARDS)
    }

    fn insert(&self, region: &Region) {
        let _edit = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        for shard in Self::shards_of(region.start, region.len) {
            let mut regions = Vec::clone(&self.shards[shard].load());
            let at = regions.partition_point(|r| r.start < region.start);
            regions.insert(at, region.clone());
            self.shards[shard].store(Arc::new(regions));
        }
    }

    fn remove(&self, start: usize, len: usize) {
        let _edit = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        for shard in Self::shards_of(start, len) {
            let mut regions = Vec::clone(&self.shards[shard].load());
            regions.retain(|r| r.start != start);
            self.shards[shard].store(Arc::new(regions));
        }
    }
}

/// Where a slice of a mapped body is in its memory file.
pub struct Found {
    /// The shard's list as loaded: keeps the file open while this lives.
    regions: Guard<Arc<Vec<Region>>>,
    index: usize,
    offset: u64,
}

impl Found {
    /// The memory file.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.regions[self.index].fd.as_fd()
    }

    /// The offset of the slice's first byte in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// The memory file holding `slice` and the offset of its first byte there, when the slice
/// is non-empty and lies wholly inside one mapped body. Cheap: no lock, no allocation.
pub fn find(slice: &[u8]) -> Option<Found> {
    locate(slice.as_ptr() as usize, slice.len())
}

/// [`find`] by address and length.
fn locate(start: usize, len: usize) -> Option<Found> {
    if len == 0 || LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let regions = REGISTRY.shards[Registry::shard_of(start)].load();
    // The mapping holding `start`, if any, is the last one beginning at or before it:
    // mappings do not overlap.
    let index = regions
        .partition_point(|r| r.start <= start)
        .checked_sub(1)?;
    let region = &regions[index];
    let offset = start - region.start;
    (offset < region.len && len <= region.len - offset).then_some(Found {
        regions,
        index,
        offset: offset as u64,
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::Weak;
    use std::time::{Duration, Instant};

    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// The registry's file for the mapping starting at `start`, and how many shards list it.
    fn registered(start: usize) -> (Option<Weak<OwnedFd>>, usize) {
        let mut file = None;
        let mut shards = 0;
        for shard in &REGISTRY.shards {
            if let Some(region) = shard.load().iter().find(|r| r.start == start) {
                file = Some(Arc::downgrade(&region.fd));
                shards += 1;
            }
        }
        (file, shards)
    }

    /// A large body joined from chunks is mapped, readable through its file, and released
    /// (unregistered, file closed) when its last clone goes.
    fn mapped_read_back_and_released(files: &BodyFiles) {
        let data = pattern(MAPPED_MIN_LEN * 2 + 123);
        let chunks: Vec<Bytes> = data.chunks(10_000).map(Bytes::copy_from_slice).collect();
        let body = files.join(&chunks);
        assert_eq!(body, data, "the same bytes");
        let start = body.as_ptr() as usize;
        let file = registered(start).0.expect("the mapping is registered");
        assert!(
            !chunks.iter().any(|c| c.as_ptr() as usize == start),
            "a copy, not a chunk"
        );

        let tail = body.slice(1000..);
        let found = find(&tail).expect("a slice of the body is found");
        assert_eq!(found.offset(), 1000);
        let mut read = vec![0; 16];
        rustix::io::pread(found.fd(), &mut read, found.offset()).unwrap();
        assert_eq!(read, data[1000..1016], "the file holds the body");
        drop(found);

        let clone = body.clone();
        drop(body);
        drop(tail);
        assert!(registered(start).0.is_some(), "a clone keeps it alive");
        drop(clone);
        assert_eq!(registered(start).1, 0, "unregistered on drop");
        // Another test may briefly hold a registry snapshot that still lists it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while file.upgrade().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            file.upgrade().is_none(),
            "the file is closed once the last clone is gone"
        );
    }

    #[test]
    fn a_large_body_in_a_memory_file_is_sealed_and_released_on_drop() {
        let files = BodyFiles::in_memory();
        mapped_read_back_and_released(&files);
        let body = files.adopt(Bytes::from(pattern(MAPPED_MIN_LEN)));
        let found = find(&body).expect("mapped");
        assert!(
            rustix::io::pwrite(found.fd(), b"x", 0).is_err(),
            "the memfd is sealed against writes"
        );
    }

    #[test]
    fn a_large_body_in_a_folder_is_a_nameless_file_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("bodies");
        let files = BodyFiles::in_dir(&folder).expect("the folder is created and takes files");
        mapped_read_back_and_released(&files);
        let body = files.adopt(Bytes::from(pattern(MAPPED_MIN_LEN)));
        assert!(find(&body).is_some(), "mapped");
        assert_eq!(
            std::fs::read_dir(&folder).unwrap().count(),
            0,
            "the files have no names"
        );
    }

    #[test]
    fn a_folder_already_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = BodyFiles::in_dir(dir.path()).unwrap();
        let Err(e) = BodyFiles::in_dir(dir.path()) else {
            panic!("a second user of the folder");
        };
        assert!(
            e.to_string().contains("in use by another edgewise process"),
            "{e}"
        );
    }

    #[test]
    fn more_chunks_than_one_write_takes_are_joined_in_order() {
        let data = pattern(3000 * 100);
        let chunks: Vec<Bytes> = data.chunks(100).map(Bytes::copy_from_slice).collect();
        assert!(chunks.len() > IOV_MAX);
        let body = BodyFiles::in_memory().join(&chunks);
        assert!(find(&body).is_some(), "mapped");
        assert!(body == data, "every chunk in its place");
    }

    #[test]
    fn a_folder_that_cannot_hold_files_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("plain");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let e = BodyFiles::in_dir(&not_a_dir).unwrap_err().to_string();
        assert!(
            e.starts_with("cdn.cache_body_dir ") && e.contains("plain"),
            "{e}"
        );
    }

    #[test]
    fn small_bodies_and_heap_slices_stay_as_they_are() {
        let small = Bytes::from(pattern(MAPPED_MIN_LEN - 1));
        let files = BodyFiles::in_memory();
        let adopted = files.adopt(small.clone());
        assert_eq!(
            adopted.as_ptr(),
            small.as_ptr(),
            "below the threshold: untouched"
        );
        let parts = [Bytes::from_static(b"ab"), Bytes::from_static(b"cd")];
        assert_eq!(files.join(&parts), "abcd");
        assert_eq!(files.join(&parts[..1]).as_ptr(), parts[0].as_ptr());
        assert!(files.join(&[]).is_empty());
        let large = Bytes::from(pattern(MAPPED_MIN_LEN));
        let _mapped = files.adopt(large.clone());
        assert!(find(&small).is_none(), "heap memory is not mapped");
        assert!(
            find(&large).is_none(),
            "nor is the heap original of a mapped body"
        );
    }

    #[test]
    fn lookups_respect_the_mapping_bounds() {
        let data = pattern(MAPPED_MIN_LEN);
        let body = BodyFiles::in_memory().adopt(Bytes::from(data.clone()));
        assert_eq!(body, data);
        assert_eq!(find(&body).expect("the whole body").offset(), 0);
        let last = find(&body[MAPPED_MIN_LEN - 1..]).expect("its last byte");
        assert_eq!(last.offset(), MAPPED_MIN_LEN as u64 - 1);
        assert!(find(&body[..0]).is_none(), "empty slices are never mapped");
        assert!(
            locate(body.as_ptr() as usize + 1, body.len()).is_none(),
            "a slice running past the end of its mapping is not sent from the file"
        );
    }

    #[test]
    fn a_body_spanning_several_shards_is_found_from_each_and_leaves_them_all() {
        let len = (5 << BUCKET_SHIFT) + 12_345;
        let data = pattern(len);
        let body = BodyFiles::in_memory().adopt(Bytes::from(data.clone()));
        let start = body.as_ptr() as usize;
        let (_, shards) = registered(start);
        assert!(shards >= 5, "listed in {shards} shards");
        for at in (0..len).step_by(1 << 19) {
            let found = find(&body[at..]).unwrap_or_else(|| panic!("found from {at}"));
            assert_eq!(found.offset(), at as u64);
            let mut read = [0u8; 4];
            rustix::io::pread(found.fd(), &mut read, found.offset()).unwrap();
            assert_eq!(read, data[at..at + 4]);
        }
        drop(body);
        assert_eq!(registered(start).1, 0, "gone from every shard");
    }
}
