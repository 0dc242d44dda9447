//! Datagrams received and sent in batches: one `recvmmsg` takes every query waiting (up to a
//! batch) and one `sendmmsg` sends their answers, so a busy UDP server makes two system calls
//! per batch instead of two per query (NSD and Knot do the same). Other systems than Linux
//! get batches of one through `recvfrom`/`sendto`.

use std::io;
use std::net::SocketAddr;

use socket2::Socket;

/// Datagrams taken from a socket at once, in buffers kept from batch to batch.
pub struct Datagrams {
    buffers: Vec<Box<[u8]>>,
    lengths: Vec<usize>,
    peers: Vec<sys::Peer>,
    count: usize,
}

impl Datagrams {
    /// Room for `batch` datagrams of up to `size` bytes each (longer ones are cut, as by
    /// `recv_from`).
    pub fn new(batch: usize, size: usize) -> Datagrams {
        let batch = batch.clamp(1, sys::MAX_BATCH);
        Datagrams {
            buffers: (0..batch)
                .map(|_| vec![0; size].into_boxed_slice())
                .collect(),
            lengths: vec![0; batch],
            peers: (0..batch).map(|_| sys::Peer::default()).collect(),
            count: 0,
        }
    }

    /// Waits for a datagram (a blocking socket waits until its read timeout) and takes it
    /// with every other one already waiting, up to the batch size. Returns how many.
    ///
    /// # Errors
    /// The socket's: `WouldBlock`/`TimedOut` when nothing came before the timeout.
    pub fn receive(&mut self, socket: &Socket) -> io::Result<usize> {
        self.count = 0;
        self.count = sys::receive(
            socket,
            &mut self.buffers,
            &mut self.lengths,
            &mut self.peers,
        )?;
        Ok(self.count)
    }

    /// Datagram `i` of the last batch and who sent it (None for an address family other
    /// than IPv4 and IPv6, which a UDP/IP socket does not produce).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        (&self.buffers[i][..self.lengths[i]], self.peers[i].address())
    }
}

/// Answers to a batch of [`Datagrams`], each sent back to the sender of its query.
pub struct Replies {
    buffers: Vec<Vec<u8>>,
    /// For each reply kept, the index of the datagram it answers.
    to: Vec<usize>,
}

impl Replies {
    /// Room for `batch` replies; each buffer starts with `capacity` bytes and grows as needed.
    pub fn new(batch: usize, capacity: usize) -> Replies {
        Replies {
            buffers: (0..batch.clamp(1, sys::MAX_BATCH))
                .map(|_| Vec::with_capacity(capacity))
                .collect(),
            to: Vec::with_capacity(batch),
        }
    }

    /// The buffer the next reply is written into; it becomes a reply with [`Replies::keep`].
    pub fn next_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffers[self.to.len()]
    }

    /// Keeps the buffer just written as the answer to datagram `i`.
    pub fn keep(&mut self, i: usize) {
        self.to.push(i);
    }

    /// Sends every kept reply to the sender of the datagram it answers, and empties the
    /// batch. Returns the errors of replies that could not be sent (each is skipped; the
    /// rest are still sent), so the caller can log them.
    pub fn send(&mut self, socket: &Socket, datagrams: &Datagrams) -> Vec<io::Error> {
        let mut errors = Vec::new();
        let mut next = 0;
        while next < self.to.len() {
            match sys::send(
                socket,
                &self.buffers,
                &self.to[next..],
                next,
                &datagrams.peers,
            ) {
                Ok(0) => break,
                Ok(sent) => next += sent,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    errors.push(e);
                    next += 1;
                }
            }
        }
        self.to.clear();
        errors
    }
}

#[cfg(target_os = "linux")]
mod sys {
    //! `recvmmsg` and `sendmmsg` through libc.

    use std::io;
    use std::mem;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;
    use std::ptr;

    use socket2::Socket;

    /// A sender's address as the kernel wrote it.
    #[derive(Clone, Copy)]
    pub struct Peer {
        storage: libc::sockaddr_storage,
        len: libc::socklen_t,
    }

    impl Default for Peer {
        fn default() -> Peer {
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (empty) value.
            let storage = unsafe { mem::zeroed() };
            Peer { storage, len: 0 }
        }
    }

    impl Peer {
        pub fn address(&self) -> Option<SocketAddr> {
            match i32::from(self.storage.ss_family) {
                libc::AF_INET if self.len as usize >= mem::size_of::<libc::sockaddr_in>() => {
                    // SAFETY: the family says the storage holds a sockaddr_in, and it is
                    // large and aligned enough for one.
                    let a = unsafe { &*ptr::from_ref(&self.storage).cast::<libc::sockaddr_in>() };
                    let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
                }
                libc::AF_INET6 if self.len as usize >= mem::size_of::<libc::sockaddr_in6>() => {
                    // SAFETY: as above, for sockaddr_in6.
                    let a = unsafe { &*ptr::from_ref(&self.storage).cast::<libc::sockaddr_in6>() };
                    let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                    let port = u16::from_be(a.sin6_port);
                    Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
                }
                _ => None,
            }
        }
    }

    /// The most datagrams one system call takes or sends; a batch asked for larger is cut.
    pub const MAX_BATCH: usize = 64;

    /// The messages of one call, on the stack: no allocation per batch.
    struct Batch {
        headers: [libc::mmsghdr; MAX_BATCH],
        iovs: [libc::iovec; MAX_BATCH],
        count: usize,
    }

    impl Batch {
        fn new() -> Batch {
            Batch {
                // SAFETY: mmsghdr and iovec are plain data; all zeroes is a valid empty value.
                headers: unsafe { mem::zeroed() },
                iovs: unsafe { mem::zeroed() },
                count: 0,
            }
        }

        /// Adds a message: its buffer and its peer's address.
        fn push(&mut self, buffer: *mut u8, len: usize, peer: *mut Peer, name_len: usize) {
            let k = self.count;
            self.iovs[k] = libc::iovec {
                iov_base: buffer.cast(),
                iov_len: len,
            };
            let header = &mut self.headers[k].msg_hdr;
            // SAFETY: only the address of the field is taken.
            header.msg_name = unsafe { ptr::addr_of_mut!((*peer).storage) }.cast();
            header.msg_namelen = name_len as libc::socklen_t;
            header.msg_iovlen = 1;
            self.count += 1;
        }

        /// The headers, each pointed at its buffer now that the batch no longer moves.
        fn prepared(&mut self) -> *mut libc::mmsghdr {
            for (header, iov) in self.headers.iter_mut().zip(&mut self.iovs).take(self.count) {
                header.msg_hdr.msg_iov = ptr::from_mut(iov);
            }
            self.headers.as_mut_ptr()
        }
    }

    pub fn receive(
        socket: &Socket,
        buffers: &mut [Box<[u8]>],
        lengths: &mut [usize],
        peers: &mut [Peer],
    ) -> io::Result<usize> {
        let mut batch = Batch::new();
        for (buffer, peer) in buffers.iter_mut().zip(peers.iter_mut()).take(MAX_BATCH) {
            let room = mem::size_of::<libc::sockaddr_storage>();
            batch.push(buffer.as_mut_ptr(), buffer.len(), peer, room);
        }
        // SAFETY: every header points at a live buffer and address of the sizes it gives,
        // which outlive the call; the kernel writes at most that much into each.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                batch.prepared(),
                batch.count as libc::c_uint,
                libc::MSG_WAITFORONE,
                ptr::null_mut(),
            )
        };
        let received = usize::try_from(received).map_err(|_| io::Error::last_os_error())?;
        for (i, header) in batch.headers.iter().take(received).enumerate() {
            lengths[i] = header.msg_len as usize;
            peers[i].len = header.msg_hdr.msg_namelen;
        }
        Ok(received)
    }

    /// Sends `buffers[first..]` (as many as `to` lists) to the peers they answer; returns how
    /// many the kernel took.
    pub fn send(
        socket: &Socket,
        buffers: &[Vec<u8>],
        to: &[usize],
        first: usize,
        peers: &[Peer],
    ) -> io::Result<usize> {
        let mut batch = Batch::new();
        for (buffer, &i) in buffers[first..].iter().zip(to).take(MAX_BATCH) {
            let peer = &peers[i];
            // sendmmsg only reads what the pointers point at.
            let (data, name) = (buffer.as_ptr().cast_mut(), ptr::from_ref(peer).cast_mut());
            batch.push(data, buffer.len(), name, peer.len as usize);
        }
        // SAFETY: every header points at a live buffer and address, which outlive the call.
        let sent = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                batch.prepared(),
                batch.count as libc::c_uint,
                0,
            )
        };
        usize::try_from(sent).map_err(|_| io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    //! One datagram at a time, through socket2.

    use std::io;
    use std::mem::MaybeUninit;
    use std::net::SocketAddr;

    use socket2::{SockAddr, Socket};

    /// One datagram per call.
    pub const MAX_BATCH: usize = 1;

    #[derive(Clone, Copy, Default)]
    pub struct Peer(Option<SocketAddr>);

    impl Peer {
        pub fn address(&self) -> Option<SocketAddr> {
            self.0
        }
    }

    pub fn receive(
        socket: &Socket,
        buffers: &mut [Box<[u8]>],
        lengths: &mut [usize],
        peers: &mut [Peer],
    ) -> io::Result<usize> {
        let buffer = &mut buffers[0];
        // SAFETY: an initialised buffer viewed as possibly uninitialised bytes; recv_from
        // only writes to it.
        let view = unsafe { &mut *(std::ptr::from_mut::<[u8]>(buffer) as *mut [MaybeUninit<u8>]) };
        let (len, from) = socket.recv_from(view)?;
        lengths[0] = len;
        peers[0] = Peer(from.as_socket());
        Ok(1)
    }

    pub fn send(
        socket: &Socket,
        buffers: &[Vec<u8>],
        to: &[usize],
        first: usize,
        peers: &[Peer],
    ) -> io::Result<usize> {
        let Some(peer) = peers[to[0]].0 else {
            return Err(io::Error::other("no address to answer"));
        };
        socket.send_to(&buffers[first], &SockAddr::from(peer))?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests;
