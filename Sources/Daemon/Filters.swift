import API
import Glibc
import OCI

/// docker's `--filter` semantics over the API's Filters: values of one key match any of
/// them, different keys must all match; `label` values must all match.
struct FilterSet {
    let filters: Filters

    init(_ filters: Filters?, allowed: [String]) throws {
        try Validate.filters(filters, allowed: allowed)
        self.filters = filters ?? [:]
    }

    /// Whether `key`'s values (if that key is filtered on) accept the object.
    func accepts(_ key: String, _ test: (String) -> Bool) -> Bool {
        guard let values = filters[key], !values.isEmpty else { return true }
        return key == "label" ? values.allSatisfy(test) : values.contains(where: test)
    }

    /// `key` or `key=value` against a label set.
    static func label(_ filter: String, _ labels: [String: String]) -> Bool {
        let parts = filter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let value = labels[parts[0]] else { return false }
        return parts.count == 1 || value == parts[1]
    }

    /// Shell-style pattern (`docker.io/library/*`), as docker's reference filter.
    static func glob(_ pattern: String, _ text: String) -> Bool { fnmatch(pattern, text, 0) == 0 }

    func matches(_ c: ContainerInfo) -> Bool {
        accepts("id") { c.id.hasPrefix($0) }
            && accepts("name") { c.name.contains($0) }
            && accepts("label") { FilterSet.label($0, c.labels) }
            && accepts("status") { c.status.rawValue == $0 }
            && accepts("ancestor") { f in c.image == f || c.image == (try? ImageReference.normalize(f)) || c.imageDigest.hasPrefix(f) || c.imageDigest.dropFirst(7).hasPrefix(f) }
    }

    func matches(_ i: ImageInfo) -> Bool {
        accepts("label") { FilterSet.label($0, i.labels) }
            && accepts("reference") { FilterSet.glob($0, i.name) || i.name == (try? ImageReference.normalize($0)) }
    }

    func matches(_ v: VolumeInfo) -> Bool {
        accepts("label") { FilterSet.label($0, v.labels) } && accepts("name") { v.name.contains($0) }
    }

    func matches(_ n: NetworkInfo) -> Bool {
        accepts("label") { FilterSet.label($0, n.labels) } && accepts("name") { n.name.contains($0) } && accepts("id") { n.id.hasPrefix($0) }
    }

    func matches(_ e: Event) -> Bool {
        accepts("type") { e.type.rawValue == $0 } && accepts("action") { e.action.rawValue == $0 }
            && accepts("id") { e.id.hasPrefix($0) } && accepts("name") { e.attributes["name"] == $0 }
    }
}
