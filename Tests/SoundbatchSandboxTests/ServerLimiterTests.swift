import Testing

@testable import SoundbatchSandbox

/// The sandbox's limiters: the same 60/min, held three ways.
@Suite struct ServerLimiterTests {
    /// Which of the requests at these times (seconds) are admitted.
    func admitted(_ shape: LimiterShape, _ times: [Double]) -> [Bool] {
        var limit = ServerRateLimit(perMinute: 60, shape: shape)
        return times.map { limit.admit(at: $0).admitted }
    }

    @Test func aBucketTakesARequestOneIntervalEarly() {
        #expect(admitted(.bucket, [0, 0, 0, 1.5, 2, 2.2]) == [true, true, false, true, true, false])
    }

    @Test func aStrictBucketTakesNothingEarly() {
        #expect(admitted(.strict, [0, 0.999, 1, 1.5, 2.1]) == [true, false, true, false, true])
        var limit = ServerRateLimit(perMinute: 60, shape: .strict)
        _ = limit.admit(at: 10)
        #expect(abs(limit.admit(at: 10.25).retryIn - 0.75) < 1e-9)
    }

    @Test func aWindowTakesTheCountInAnySixtySeconds() {
        var limit = ServerRateLimit(perMinute: 60, shape: .window)
        #expect((0..<60).allSatisfy { limit.admit(at: Double($0) * 0.5).admitted })  // a burst is fine...
        let refused = limit.admit(at: 30)
        #expect(!refused.admitted && abs(refused.retryIn - 30) < 1e-9)  // ...until the window is full
        #expect(limit.admit(at: 60).admitted && !limit.admit(at: 60.1).admitted)
    }
}
