@preconcurrency import Glibc
import CLinux

/// One epoll instance and the handler for each fd on it: the shim's single thread sleeps
/// here between events (no thread pool: each thread costs memory in every shim).
final class EventLoop {
    private let epfd: Int32
    private var handlers: [Int32: (UInt32) -> Void] = [:]
    var running = true

    static let readable = UInt32(EPOLLIN.rawValue)
    static let writable = UInt32(EPOLLOUT.rawValue)
    static let hangup = UInt32(EPOLLHUP.rawValue | EPOLLERR.rawValue)

    init() throws(ShimError) {
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        if epfd < 0 { throw ShimError.sys("epoll_create1") }
    }

    func watch(_ fd: Int32, events: UInt32 = EventLoop.readable, _ handler: @escaping (UInt32) -> Void) {
        var ev = epoll_event()
        ev.events = events
        ev.data.fd = fd
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
        handlers[fd] = handler
    }

    func modify(_ fd: Int32, events: UInt32) {
        var ev = epoll_event()
        ev.events = events
        ev.data.fd = fd
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    /// Stops watching (before the fd is closed, so a reused number never reaches a stale handler).
    func unwatch(_ fd: Int32) {
        guard handlers.removeValue(forKey: fd) != nil else { return }
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
    }

    /// Runs handlers until `running` is false. After a second with nothing to do, the code
    /// pages the last activity mapped are given back (CodeTrim) and the loop sleeps until the
    /// next event: an idle shim holds only what idling needs.
    func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var trimmed = false
        while running {
            let n = epoll_wait(epfd, &events, Int32(events.count), trimmed ? -1 : 1000)
            if n == 0 && !trimmed {
                CodeTrim.releaseMappedCode()
                trimmed = true
                continue
            }
            if n < 0 { if errno == EINTR { continue }; return }
            trimmed = false
            for i in 0..<Int(n) {
                let fd = events[i].data.fd
                handlers[fd]?(events[i].events)
            }
        }
    }
}
