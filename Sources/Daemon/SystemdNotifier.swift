import CSystemd
import Foundation

/// sd_notify through libsystemd. Without NOTIFY_SOCKET every call is a no-op, so
/// the daemon runs the same in the foreground.
public final class SystemdNotifier: @unchecked Sendable {
    public let enabled: Bool
    /// Half of WATCHDOG_USEC, in seconds, when systemd asked for keep-alives.
    public let watchdogInterval: Double?
    private let lock = NSLock()
    private var lastWatchdog = 0.0
    private var lastStatus = ""

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        enabled = environment["NOTIFY_SOCKET"].map { !$0.isEmpty } ?? false
        var usec: UInt64 = 0
        // sd_watchdog_enabled checks WATCHDOG_PID against our pid as systemd sets it.
        if sd_watchdog_enabled(0, &usec) > 0, usec > 0 {
            watchdogInterval = Double(usec) / 2_000_000
        } else {
            watchdogInterval = nil
        }
    }

    @discardableResult
    public func send(_ state: String) -> Bool {
        guard enabled else { return false }
        return csystemd_notify(state) > 0
    }

    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    public func status(_ text: String) {
        lock.lock()
        let changed = text != lastStatus
        lastStatus = text
        lock.unlock()
        if changed { send("STATUS=\(text)") }
    }

    /// RELOADING=1 with the CLOCK_MONOTONIC time, as Type=notify-reload expects.
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    public func stopping() { send("STOPPING=1") }

    /// Sends WATCHDOG=1 when half the watchdog period has passed since the last one.
    public func watchdogTick(now: Double) {
        guard let interval = watchdogInterval else { return }
        lock.lock()
        let due = now - lastWatchdog >= interval
        if due { lastWatchdog = now }
        lock.unlock()
        if due { send("WATCHDOG=1") }
    }
}
