@preconcurrency import Glibc
import CLinux
import OCI

/// Idmapped bind mounts (Linux 5.12+): the source's files appear with their owners shifted,
/// a file owned by `containerID + n` on the source shown as owned by `hostID + n` at the
/// mount, and nothing changes on the source itself. A mount is idmapped when it carries its
/// own uidMappings/gidMappings, or says `idmap` (`ridmap`: every mount below it too), which
/// without mappings of its own takes the container's user namespace mappings, as runc does.
struct IdmappedMount {
    let uidMappings: [IDMapping]
    let gidMappings: [IDMapping]
    let recursive: Bool

    /// The idmapping `m` asks for, nil when it is a plain mount; a request srunc cannot meet is
    /// an error naming the mount.
    init?(_ m: OCI.Mount, spec: Spec) throws {
        let words = m.options ?? []
        let asked = words.contains("idmap") || words.contains("ridmap")
        guard asked || m.uidMappings != nil || m.gidMappings != nil else { return nil }
        guard MountOptions(words).isBind || m.type == "bind" else {
            throw RuntimeError("mount \(m.destination): idmapped mounts must be bind mounts")
        }
        var uid = m.uidMappings ?? [], gid = m.gidMappings ?? []
        if uid.isEmpty && gid.isEmpty {
            uid = spec.linux?.uidMappings ?? []
            gid = spec.linux?.gidMappings ?? []
            guard !uid.isEmpty, spec.linux?.namespaces?.contains(where: { $0.type == "user" }) == true else {
                throw RuntimeError("mount \(m.destination): idmap needs uidMappings and gidMappings on the mount or a user namespace")
            }
        }
        guard !uid.isEmpty, !gid.isEmpty else {
            throw RuntimeError("mount \(m.destination): an idmapped mount needs both uidMappings and gidMappings")
        }
        uidMappings = uid
        gidMappings = gid
        recursive = words.contains("ridmap")
    }

    /// Idmaps the detached tree `treeFD` (open_tree clone of the source).
    func apply(to treeFD: Int32, destination: String) throws {
        let userns = try IdmappedMount.userNamespace(uid: uidMappings, gid: gidMappings)
        defer { close(userns) }
        try check("idmap mount \(destination)") { cl_mount_setattr_idmap(treeFD, userns, recursive ? 1 : 0) }
    }

    /// A user namespace holding the mappings, kept by an fd: a child unshares it and waits
    /// while its maps are written, then exits when the pipe closes.
    static func userNamespace(uid: [IDMapping], gid: [IDMapping]) throws -> Int32 {
        var pipe: [Int32] = [0, 0]
        try check("pipe") { cl_pipe2(&pipe, O_CLOEXEC) }
        let pid = cl_clone(UInt(UInt32(bitPattern: CL_NEWUSER)))
        if pid == 0 {
            close(pipe[1])
            var byte: UInt8 = 0
            _ = read(pipe[0], &byte, 1)
            _exit(0)
        }
        close(pipe[0])
        defer {
            close(pipe[1])
            var status: Int32 = 0
            if pid > 0 { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
        }
        guard pid > 0 else { throw RuntimeError.sys("clone a user namespace for an idmapped mount") }
        do {
            try Files.write("/proc/\(pid)/uid_map", Creator.idMap(uid))
            try Files.write("/proc/\(pid)/gid_map", Creator.idMap(gid))
        } catch {
            throw RuntimeError("write idmapped mount mappings: \(error)")
        }
        return try check("open the idmapped mount's user namespace") { open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC) }
    }
}
