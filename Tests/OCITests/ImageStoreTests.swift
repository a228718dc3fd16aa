import Foundation
@testable import ImageStore
import Testing

/// The image store's pure and filesystem parts: hashing, tar reading, importing the fixture.
@Suite("image store units") struct ImageStoreTests {
    @Test func sha256MatchesKnownDigests() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array(String(repeating: "a", count: 1000).utf8)
        var h = SHA256()
        for chunk in stride(from: 0, to: long.count, by: 7) { h.update(Array(long[chunk..<min(chunk + 7, long.count)])) }
        #expect(h.finish() == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test func chainIDsFollowTheSpec() {
        let a = "sha256:" + String(repeating: "a", count: 64), b = "sha256:" + String(repeating: "b", count: 64)
        #expect(Snapshotter.chainIDs([a, b]) == [a, "sha256:" + SHA256.hex(Array("\(a) \(b)".utf8))])
    }

    @Test func cleanedPathsNeverClimb() {
        #expect(LayerUnpacker.clean("./a/b/../c") == ["a", "c"])
        #expect(LayerUnpacker.clean("/etc/passwd") == ["etc", "passwd"])
        #expect(LayerUnpacker.clean("../x") == nil)
        #expect(LayerUnpacker.clean("a/../../x") == nil)
    }
}
