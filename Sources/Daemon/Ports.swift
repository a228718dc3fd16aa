import API
import Foundation

/// Published ports. The portmap plugin forwards with DNAT rules and binds nothing, so the daemon
/// holds each host port itself (a bound, never listening socket) while the container has it:
/// a port that something else uses is refused up front, and nothing takes it meanwhile.
extension Daemon {
    /// Binds every published port (0: a free one the kernel picks), the image's exposed ports
    /// too with `publishAll`; the bindings with their host ports. All or none.
    func reservePorts(_ id: String, publish: [PortBinding], exposed: [String]) throws -> [PortBinding] {
        var wanted = publish
        for text in exposed.sorted() {
            guard let binding = try? PortBinding.parse(text).first else { continue }
            if !wanted.contains(where: { $0.containerPort == binding.containerPort && $0.proto == binding.proto }) { wanted.append(binding) }
        }
        var held: [Int32] = []
        var bound: [PortBinding] = []
        do {
            for var p in wanted {
                let (fd, port) = try Daemon.bindPort(p)
                held.append(fd)
                p.hostPort = port
                bound.append(p)
            }
        } catch {
            held.forEach { close($0) }
            throw error
        }
        lock.lock()
        reservedPorts[id, default: []] += held
        lock.unlock()
        return bound
    }

    func releasePorts(_ id: String) {
        lock.lock()
        let held = reservedPorts.removeValue(forKey: id) ?? []
        lock.unlock()
        held.forEach { close($0) }
    }

    /// After a restart of the daemon: hold again the ports of the containers still running.
    func reclaimPorts(_ id: String) {
        for a in cni.cached(id) {
            for p in a.ports {
                do {
                    let (fd, _) = try Daemon.bindPort(p)
                    lock.lock(); reservedPorts[id, default: []].append(fd); lock.unlock()
                } catch {
                    log.warning("container \(id): port \(p.text) could not be held again: \(error)")
                }
            }
        }
    }

    /// A socket bound to the binding's address and port (SO_REUSEADDR off: a port in use by
    /// anyone fails), close-on-exec so no child inherits it.
    static func bindPort(_ p: PortBinding) throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(p.proto == .tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw APIError.internal("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = p.hostPort.bigEndian
        address.sin_addr.s_addr = (p.hostIP.isEmpty ? 0 : IPv4Address(p.hostIP)?.value ?? 0).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else {
            let e = errno
            close(fd)
            let shown = "\(p.hostIP.isEmpty ? "0.0.0.0" : p.hostIP):\(p.hostPort)/\(p.proto.rawValue)"
            if e == EADDRINUSE { throw APIError.conflict("port is already allocated: \(shown) is in use on the host") }
            if e == EADDRNOTAVAIL { throw APIError.params("publish: \(shown): the host has no address \(p.hostIP)") }
            throw APIError.internal("bind \(shown): \(String(cString: strerror(e)))")
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }
}
