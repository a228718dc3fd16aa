import API
import CLinux
@preconcurrency import Glibc
import Foundation
import RPC
import Wire

/// docker's detach keys for a terminal session, ctrl-p ctrl-q: a lone ctrl-p is held back
/// until the next byte shows it is not the start of the sequence.
struct DetachKeys {
    private var heldCtrlP = false

    /// The bytes to pass on, and whether the sequence was typed.
    mutating func scan(_ bytes: ArraySlice<UInt8>) -> ([UInt8], Bool) {
        var out: [UInt8] = []
        for b in bytes {
            if heldCtrlP {
                heldCtrlP = false
                if b == 0x11 { return (out, true) }
                out.append(0x10)
            }
            if b == 0x10 { heldCtrlP = true } else { out.append(b) }
        }
        return (out, false)
    }
}

/// docker's `--sig-proxy`: every signal sctr receives (but those about its own terminal and
/// children) goes to the container; a second INT or TERM kills it, so that an attached
/// `run --rm` still ends and removes it. Must start before any other thread: the mask it sets
/// is inherited by threads created afterwards.
enum SignalProxy {
    static func start(client: Client, id: String) {
        let fd = cl_signalfd_all(nil)
        guard fd >= 0 else { return }
        Thread.detachNewThread {
            var interrupts = 0
            var info = signalfd_siginfo()
            while read(fd, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
                let sig = Int32(info.ssi_signo)
                guard ![SIGCHLD, SIGWINCH, SIGURG, SIGPIPE].contains(sig) else { continue }
                if sig == SIGINT || sig == SIGTERM { interrupts += 1 }
                let sent = interrupts >= 2 ? SIGKILL : sig
                _ = try? client.call(Calls.ContainerKill.self, KillParams(id: id, signal: Signal(number: Int(sent))))
            }
        }
    }
}

/// The client's end of an attach or exec: output notices to stdout/stderr, our stdin (when
/// asked) as `stream.stdin` requests, the terminal in raw mode and its size sent along for a
/// tty. Ends with the process's exit code.
final class StreamSession: @unchecked Sendable {
    let client: Client
    let socket: LineSocket
    let tty: Bool
    let stdin: Bool
    /// The attach or exec request's id: its notices carry it.
    let requestID: JSONValue
    private let lock = NSLock()
    private var nextID = 100
    /// The id of our stream.detach request: its reply ends the session, the container goes on.
    private var detachID: JSONValue?

    init(client: Client, socket: LineSocket, tty: Bool, stdin: Bool, requestID: Int) {
        self.client = client
        self.socket = socket
        self.tty = tty
        self.stdin = stdin
        self.requestID = .number(Double(requestID))
    }

    private func newID() -> Int {
        lock.lock(); defer { lock.unlock() }
        nextID += 1
        return nextID
    }

    private func send<C: Call>(_ call: C.Type, _ params: C.Params) -> Int {
        let id = newID()
        client.send(call, params, on: socket, id: id)
        return id
    }

    /// Our terminal's size, if stdin is a terminal with one.
    static func terminalSize() -> ResizeParams? {
        var size = winsize()
        guard isatty(0) != 0, cl_ioctl_ptr(0, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0 else { return nil }
        return ResizeParams(rows: size.ws_row, cols: size.ws_col)
    }

    /// Tells the process our terminal's size; waiting for the answer lets `run` send it before
    /// the container starts, so even its first `stty size` sees it.
    func sendTerminalSize(waitForReply: Bool) {
        guard tty, isatty(0) != 0 else { return }
        var size = winsize()
        guard cl_ioctl_ptr(0, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0 else { return }
        let id = send(Calls.StreamResize.self, ResizeParams(rows: size.ws_row, cols: size.ws_col))
        while waitForReply, let bytes = socket.readLine(), let line = ServerLine(bytes), line.id != .number(Double(id)) {}
    }

    /// Sends our terminal's new size whenever it changes. Polled (4 times a second) on its own
    /// thread rather than caught as SIGWINCH: a signal handler is no place for socket writes.
    private func followTerminalSize() {
        Thread.detachNewThread { [self] in
            var last = winsize()
            _ = cl_ioctl_ptr(0, UInt(TIOCGWINSZ), &last)
            while !socket.closed {
                usleep(250_000)
                var now = winsize()
                guard cl_ioctl_ptr(0, UInt(TIOCGWINSZ), &now) == 0, now.ws_row != last.ws_row || now.ws_col != last.ws_col else { continue }
                last = now
                _ = send(Calls.StreamResize.self, ResizeParams(rows: now.ws_row, cols: now.ws_col))
            }
        }
    }

    private func pumpStdin() {
        Thread.detachNewThread { [self] in
            var buf = [UInt8](repeating: 0, count: 32 * 1024)
            var keys = DetachKeys()
            while true {
                let got = read(0, &buf, buf.count)
                if got <= 0 { break }
                let (pass, detach) = tty ? keys.scan(buf[0..<got]) : (Array(buf[0..<got]), false)
                if !pass.isEmpty { _ = send(Calls.StreamStdin.self, StdinParams(data: Data(pass).base64EncodedString())) }
                if detach {
                    let id = send(Calls.StreamDetach.self, Empty())
                    lock.lock(); detachID = .number(Double(id)); lock.unlock()
                    return
                }
            }
            // End of our input: a pipe is closed; a terminal session just keeps going.
            if !tty { _ = send(Calls.StreamCloseStdin.self, Empty()) }
        }
    }

    /// Writes an output notice; the exit code for an exit notice; nil otherwise.
    func handle(_ line: ServerLine) -> Int32? {
        lock.lock(); let detached = detachID != nil && line.id == detachID; lock.unlock()
        if detached { return 0 }
        guard line.id == requestID else {
            // Replies to our stream.* requests: only an error is worth a word.
            if let e = line.error, e.code != .failedPrecondition { FileHandle.standardError.write(Data("sctr: \(e.message)\n".utf8)) }
            return nil
        }
        if let output = line.notice(API.Output.self), let data = Data(base64Encoded: output.data) {
            (output.stream == .stderr ? FileHandle.standardError : FileHandle.standardOutput).write(data)
            return nil
        }
        if let exit = line.notice(ExitStatus.self) { return Int32(truncatingIfNeeded: exit.code) }
        if let e = line.error {
            FileHandle.standardError.write(Data("sctr: \(e.message)\n".utf8))
            return 125
        }
        return nil
    }

    /// Relays until the exit notice; the process's exit code.
    func relay(sizeSent: Bool) -> Int32 {
        var saved = [UInt8](repeating: 0, count: 256)
        let raw = tty && isatty(0) != 0 && cl_raw_tty(0, &saved, saved.count) == 0
        defer { if raw { saved.withUnsafeBytes { _ = tcsetattr(0, TCSANOW, $0.bindMemory(to: termios.self).baseAddress!) } } }
        if !sizeSent { sendTerminalSize(waitForReply: false) }
        if tty, isatty(0) != 0 { followTerminalSize() }
        if stdin { pumpStdin() }
        while let bytes = socket.readLine() {
            guard let line = ServerLine(bytes) else { continue }
            if let code = handle(line) { return code }
        }
        FileHandle.standardError.write(Data("sctr: the daemon closed the connection\n".utf8))
        return 125
    }
}
