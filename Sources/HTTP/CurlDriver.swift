import CCurlShim
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs every transfer of one client on one curl multi handle, driven by one dedicated
/// pthread. Blocking in curl_multi_poll there keeps Swift's cooperative pool and GCD free;
/// other threads only queue commands and call curl_multi_wakeup (which is thread-safe).
final class CurlDriver: Sendable {
    private enum Command {
        case add(CurlTransfer)
        case cancel(CurlTransfer)
        case stop
    }

    private struct Inbox {
        var commands: [Command] = []
        var stopped = false
    }

    /// CURLM* is a raw pointer; it is used by the driver thread, plus curl_multi_wakeup
    /// under the inbox lock (so never after curl_multi_cleanup).
    private struct MultiHandle: @unchecked Sendable {
        let raw: UnsafeMutableRawPointer
    }

    private let multi: MultiHandle
    private let inbox = Mutex(Inbox())

    init() throws(HTTPError) {
        try loadCurl()
        guard let raw = sw_curl_multi_init() else {
            throw .invalidConfiguration(reason: "curl_multi_init failed")
        }
        multi = MultiHandle(raw: raw)
        try startThread()
    }

    /// Starts `transfer`; its continuation is resumed on the driver thread when it ends.
    func submit(_ transfer: CurlTransfer) {
        if !enqueue(.add(transfer)) { transfer.finish(code: CURLE_ABORTED_BY_CALLBACK, cancelled: true) }
    }

    func cancel(_ transfer: CurlTransfer) {
        _ = enqueue(.cancel(transfer))
    }

    /// Ends the thread; transfers still running finish as cancelled.
    func stop() {
        _ = enqueue(.stop)
    }

    private func enqueue(_ command: Command) -> Bool {
        inbox.withLock { inbox in
            guard !inbox.stopped else { return false }
            inbox.commands.append(command)
            sw_curl_multi_wakeup(multi.raw)
            return true
        }
    }

    // MARK: Driver thread

    private func startThread() throws(HTTPError) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(
            &thread, nil,
            { context in
                let driver = Unmanaged<CurlDriver>.fromOpaque(context!).takeRetainedValue()
                ccurl_name_current_thread("syncwizard-http")
                driver.run()
                return nil
            }, context)
        guard status == 0 else {
            Unmanaged<CurlDriver>.fromOpaque(context).release()
            sw_curl_multi_cleanup(multi.raw)
            throw .invalidConfiguration(reason: "cannot start the HTTP thread (error \(status))")
        }
        pthread_detach(thread)
    }

    private func run() {
        var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        var running = true
        while running {
            let commands = inbox.withLock { inbox in
                defer { inbox.commands.removeAll() }
                return inbox.commands
            }
            for command in commands {
                switch command {
                case .add(let transfer):
                    if transfer.isCancelled {
                        transfer.finish(code: CURLE_ABORTED_BY_CALLBACK, cancelled: true)
                    } else if sw_curl_multi_add_handle(multi.raw, transfer.easy) == CURLM_OK {
                        active[transfer.easy] = transfer
                    } else {
                        transfer.finish(code: CURLE_FAILED_INIT)
                    }
                case .cancel(let transfer):
                    // Not found: not added yet (`add` sees the flag) or already finished.
                    if active[transfer.easy] === transfer {
                        active[transfer.easy] = nil
                        sw_curl_multi_remove_handle(multi.raw, transfer.easy)
                        transfer.finish(code: CURLE_ABORTED_BY_CALLBACK, cancelled: true)
                    }
                case .stop:
                    running = false
                }
            }
            guard running else { break }

            var stillRunning: Int32 = 0
            sw_curl_multi_perform(multi.raw, &stillRunning)
            var queued: Int32 = 0
            while let message = sw_curl_multi_info_read(multi.raw, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                    let transfer = active.removeValue(forKey: easy)
                else { continue }
                let code = message.pointee.data.result
                sw_curl_multi_remove_handle(multi.raw, easy)
                transfer.finish(code: code)
            }
            // Returns on socket activity, libcurl's own timers, or curl_multi_wakeup.
            sw_curl_multi_poll(multi.raw, nil, 0, 1000, nil)
        }
        shutDown(active)
    }

    private func shutDown(_ active: [UnsafeMutableRawPointer: CurlTransfer]) {
        let leftover = inbox.withLock { inbox in
            inbox.stopped = true
            defer { inbox.commands.removeAll() }
            return inbox.commands
        }
        for (easy, transfer) in active {
            sw_curl_multi_remove_handle(multi.raw, easy)
            transfer.finish(code: CURLE_ABORTED_BY_CALLBACK, cancelled: true)
        }
        for case .add(let transfer) in leftover {
            transfer.finish(code: CURLE_ABORTED_BY_CALLBACK, cancelled: true)
        }
        sw_curl_multi_cleanup(multi.raw)
    }
}
