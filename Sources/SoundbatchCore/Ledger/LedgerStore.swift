import Foundation

// The storage seam. Each stage of the pipeline talks to the protocol shaped by what it
// needs, never to a backend: the feed and `drop` to `IngestLedger`, the dispatcher to
// `SubmissionLedger`, a run to `SendingLedger` and `BatchMemory`, the tracker and the
// webhook receiver to `StatusLedger`, the downloader to `DownloadLedger`, reports and
// status to `ReportLedger`, `retry` to `RetryLedger`, `ledger copy` to `LedgerRows`; each
// finds batches by name through `BatchDirectory`. `LedgerStore` is all of them: what a
// backend implements.
//
// The guarantees below are the ledger's promise about money; every backend keeps them.
// The SQLite backend (`SoundbatchSQLite`) keeps them with one file, full syncs and a
// lock file; a server database keeps them with transactions and leases.

/// One backend of the ledger: every stage's view of it.
public protocol LedgerStore: IngestLedger, SendingLedger, StatusLedger, DownloadLedger, ReportLedger, BatchMemory,
    RetryLedger, ReviewLedger, CheckLedger, LedgerRows
{
    /// Where the ledger is, for messages: a file path or a database URL without its password.
    var location: String { get }

    /// Whether several runners may work on it at once (a server database): each then
    /// takes on the tasks of runners that died, while it runs.
    var isShared: Bool { get }

    /// The pace of `requests` with the key of this fingerprint, shared by every runner
    /// using the key; nil where one runner works alone (SQLite).
    func sharedPace(forKey fingerprint: String, _ requests: PacedRequests) async throws -> (any SharedPace)?
}

extension SubmissionLedger {
    /// `markSubmitting` for a request whose callback carries no token.
    public func markSubmitting(jobID: Int64, now: Date) async throws -> Int64 {
        try await markSubmitting(jobID: jobID, callbackToken: nil, now: now)
    }
}

/// Finds a batch by the name the user gave it.
public protocol BatchDirectory: Sendable {
    /// The batch's id; `LedgerError.noSuchBatch`, naming the batches there are, if none has the name.
    func batchID(named name: String) async throws -> Int64

    /// Throws `LedgerError.unknownState`, naming the row, when a job of the batch (of every
    /// batch, for nil), or an earlier take of one, is in a state this soundbatch does not
    /// know: a command that reads them stops rather than count it as another, or not at all.
    func requireKnownStates(batchID: Int64?) async throws
}

/// What `retry` needs: the jobs that may go again, and a new take for each.
public protocol RetryLedger: BatchDirectory {
    /// The batch's jobs in `states` (finished ones only: failed, generation_failed,
    /// remote_missing, completed), in id order.
    func retryCandidates(batchID: Int64, states: Set<JobState>) async throws -> [RetryCandidate]

    /// Starts a new take of each job, in one transaction: what its current take was given
    /// (task, answers, charge, verdict, file, and the prompt that made it) is kept in the
    /// ledger's takes, and the job is
    /// pending again, for its next take, sent with its prompt in `prompts` when there is
    /// one (an edited prompt), else the row's. Returns how many moved.
    func startNewTakes(
        jobIDs: [Int64], prompts: [Int64: String], now: Date
    )
        async throws -> Int
}

/// What a batch remembers of how it is run.
public protocol BatchMemory: BatchDirectory {
    /// The settings the batch was last run with; nil if it has never been run.
    func settings(ofBatch batchID: Int64) async throws -> BatchSettings?

    /// Keeps the settings the batch is run with from now on.
    func recordSettings(_ settings: BatchSettings, ofBatch batchID: Int64) async throws

    /// Whether the service may hold tasks of the batch: a job has a task ID, or sent a
    /// request that got no answer, or is being sent.
    func hasTasks(batchID: Int64) async throws -> Bool
}

/// Where a CSV file's rows become jobs.
public protocol IngestLedger: BatchDirectory {
    /// Records a file's rows into the batch in one transaction, creating the batch when it
    /// is new and recording the feed: takes `feed.nextRows()` until nil, tells
    /// `feed.took(_:problem:_:)` what became of each row, in file order, then asks
    /// `feed.verdict()` for the counts to keep with the feed. When anything throws (the
    /// verdict too) nothing is kept: a feed is all or nothing. A row is known by its key in
    /// the batch: a key already there is not added again (see `FeedOutcome`).
    func record(_ feed: Feed, batch: String, sourceFile: String, now: Date) async throws

    /// How many rows the batch's latest feed added whose prompt a pending job from an
    /// earlier feed has.
    func repeatedPrompts(batchID: Int64) async throws -> Int

    /// The batch's jobs in `states` (pending, invalid), with whether each was never sent
    /// (`LedgerSQL.neverSent`); only those of its latest feed with `lastFeed`.
    func dropCandidates(batchID: Int64, states: Set<JobState>, lastFeed: Bool) async throws -> [DropCandidate]

    /// Removes the jobs that were never sent, with their attempts, in one transaction,
    /// checking again that each was never sent; returns how many went.
    func drop(jobIDs: [Int64]) async throws -> Int
}

/// What the dispatcher needs: pending jobs out, answers in.
public protocol SubmissionLedger: Sendable {
    func countPending(batchID: Int64) async throws -> Int

    /// The next pending jobs after `afterID`, in id order.
    func pendingJobs(batchID: Int64, afterID: Int64, limit: Int) async throws -> [PendingJob]

    /// What the batch has estimated so far, for --max-credits.
    func creditState(batchID: Int64) async throws -> CreditState

    /// Durably marks the job `submitting` and opens its attempt, in one transaction that is
    /// on stable storage before this returns: only then may the request leave. Throws
    /// `LedgerError.notPending` when the job is no longer pending, and stops everything
    /// when the ledger itself is gone. Returns the attempt's id.
    func markSubmitting(jobID: Int64, callbackToken: String?, now: Date) async throws -> Int64

    /// Records the answer to one attempt and moves the job to `state`, in one transaction.
    func recordSubmission(
        jobID: Int64, attemptID: Int64, outcome: SubmitOutcome, state: JobState,
        latency: Duration, now: Date) async throws
}

/// What a run needs around the dispatcher: one sender, and the jobs an earlier one left.
public protocol SendingLedger: SubmissionLedger, BatchDirectory {
    /// Runs `body` as a sender of the batch. No sender may take another's requests in
    /// flight for interrupted ones, so on SQLite this process is the ledger's only sender
    /// (a lock on a file beside it; `LedgerError.busy`, naming the holder, when another has
    /// it), and on a server database each sender holds a lease, renewed while `body` runs,
    /// and the jobs it claims are its own until it stops or its lease runs out.
    func withSending<T: Sendable>(batch: String, _ body: (_ batchID: Int64) async throws -> T) async throws -> T

    /// Jobs left `submitting` by a sender that died mid-request are held `in_doubt`: the
    /// service may have created, and charged for, their tasks. Call with the claim held.
    func holdInterruptedSubmissions(now: Date) async throws -> Int

    /// Puts the batch's jobs in doubt back in line, at the user's explicit request, but for
    /// those whose request carried a callback token and left at `awaitingSince` or later:
    /// their callbacks may still come and settle them.
    func requeueInDoubt(batchID: Int64, awaitingSince: Date?, now: Date) async throws -> Requeued

    /// The longest a task of the batch took from its request to its end, in seconds, if any finished.
    func longestGeneration(batchID: Int64) async throws -> Double?
}

/// What the tracker and the webhook receiver need: tasks to follow, news of them in.
public protocol StatusLedger: BatchDirectory {
    /// Runs `body` as a runner following the batch's tasks: on a server database it holds a
    /// lease, as a sender does, and the tasks it takes on are its own to look at until it
    /// stops or its lease runs out. (SQLite: one machine, nothing to share; just `body`.)
    func withFollowing<T: Sendable>(batch: String, _ body: (_ batchID: Int64) async throws -> T) async throws -> T

    /// The batch's jobs still running at the service, in id order: on a server database,
    /// those no other live runner follows, taken on by this one.
    func submittedJobs(batchID: Int64) async throws -> [TrackedJob]

    /// A job's state now: a callback may have settled it since the tracker took it in.
    func state(jobID: Int64) async throws -> JobState?

    /// The job that holds this task, and its batch, if any.
    func job(taskID: String) async throws -> (id: Int64, batchID: Int64)?

    /// The ledger's identity: a receiver names it, so that a run knows the callbacks it
    /// asks for come back to this ledger.
    func identity() async throws -> String

    /// The job whose request carried this callback token, and its batch, if any.
    func job(callbackToken: String) async throws -> (id: Int64, batchID: Int64)?

    /// Settles job `jobID` with task `taskID`, made by its request that carried
    /// `callbackToken`, as a status look found it (`status`), in one transaction: a job in
    /// doubt (no task) becomes submitted with it; one still being sent keeps it for the next
    /// run to confirm; one that has another task since keeps it as an earlier take, so that
    /// no task is lost; nothing when the ledger has the task.
    func settle(
        jobID: Int64, callbackToken: String, taskID: String, status: RemoteStatus, now: Date
    )
        async throws -> CallbackSettlement

    /// Keeps the task a request's callback named when the service could not confirm it
    /// then: its job is not sent again until a run has confirmed (or refuted) it.
    func noteCallback(token: String, taskID: String) async throws

    /// The batch's jobs in doubt whose requests' callbacks named a task not yet confirmed.
    func unconfirmedCallbacks(batchID: Int64) async throws -> [UnconfirmedCallback]

    /// Forgets the task a request's callback named: the service does not know it.
    func forgetCallback(token: String) async throws

    /// When the latest request of the batch's jobs in doubt left that asked for a callback
    /// with its token, if any: until its task could have finished, its callback may come.
    func latestRequestAwaitingCallback(batchID: Int64) async throws -> Date?

    /// Settles job `jobID`, in doubt, with a task found in the account by hand, in one
    /// transaction; refused for a task the ledger holds already, or a job not in doubt.
    func adopt(jobID: Int64, taskID: String, now: Date) async throws -> Adoption

    /// Records what the service says of a task, in one transaction: `completed` with its
    /// audio and charge, `generation_failed`, or still running. Only a submitted job moves;
    /// the same news twice changes nothing. Returns the job's state afterwards and whether
    /// anything changed.
    @discardableResult
    func recordStatus(jobID: Int64, _ remote: RemoteStatus, now: Date) async throws -> (JobState, changed: Bool)

    /// Records that the service does not know the job's task: a submitted job becomes
    /// `remote_missing`, with `reason` as its error. Returns whether it changed.
    @discardableResult
    func recordMissing(jobID: Int64, reason: String, now: Date) async throws -> Bool

    /// Records one status look, in one transaction: its attempt, and what it found of the
    /// task as `recordStatus` would. Returns the job's state after, when the look found the task.
    @discardableResult
    func recordLook(
        jobID: Int64, _ outcome: StatusOutcome, startedAt: Date, latency: Duration, now: Date
    )
        async throws -> JobState?
}

/// What the downloader needs: completed jobs' audio, where it went, and what its check found.
public protocol DownloadLedger: CheckLedger {
    /// The batch's completed jobs with an audio URL, in id order.
    func audioJobs(batchID: Int64) async throws -> [AudioJob]

    func audioJob(id: Int64) async throws -> AudioJob?

    /// Where this machine saved a job's sound (beside another machine's, never over it), and
    /// on a shared ledger the sound itself, unless `storing` is false (it came from there).
    func recordDownload(
        jobID: Int64, path: String, size: Int, sha256: String, sound: SoundSummary?, storing: Bool, now: Date)
        async throws

    /// The batch's saved sounds, every take: where each is on this machine, and its SHA-256.
    func savedSounds(batchID: Int64) async throws -> [SavedSound]

    /// Where the team's sounds are kept: the ledger on PostgreSQL; nil on SQLite, whose
    /// ledger and files are on one machine.
    var soundStore: (any SoundStore)? { get }

    /// Whether another job already downloaded to this path, compared as a file system that
    /// ignores case would (`FileNames.caseKey`).
    func isPathTaken(_ path: String, byOtherThan jobID: Int64) async throws -> Bool
}

/// What reports and status read.
public protocol ReportLedger: CheckLedger {
    /// Every batch's name and settings (or the one named: `LedgerError.noSuchBatch` if none is).
    func batchSettings(batch: String?) async throws -> [(name: String, settings: BatchSettings?)]

    /// The sounds of each batch (or the one named) by verdict.
    func verdictCounts(batch: String?) async throws -> [String: VerdictCounts]

    /// Jobs failed for good, counted by batch, state and reason.
    func failureReasons(batch: String?) async throws -> [(batch: String, failure: BatchStatus.Failure)]

    /// The batch's pending jobs and the average estimate of its jobs, without reading every
    /// job: what `run --dry-run` forecasts after a feed.
    func pendingForecast(batchID: Int64) async throws -> PendingForecast

    /// Totals per group and overall, summed in one pass over the jobs the query covers.
    func spendReport(_ query: ReportQuery) async throws -> SpendReport

    /// Credits estimated (at submission) and charged (at completion) each second, in time
    /// order: what `creditTimeline` adds up.
    func creditsBySecond(_ query: ReportQuery) async throws -> [CreditPoint]

    /// The first `limit` jobs the report covers that failed for good (failed,
    /// generation_failed, remote_missing), with why. (How many there are in all, the
    /// report's totals say.)
    func failedJobs(_ query: ReportQuery, limit: Int) async throws -> [FailedJob]

    /// The metadata keys (extra CSV columns) of the jobs a report covers, in order of first use.
    func metadataKeys(_ query: ReportQuery) async throws -> [String]

    /// Calls `body` with the current take of each job the report covers, in order of batch
    /// and job, without holding them all.
    func forEachReportJob(_ query: ReportQuery, metadataKeys: [String], _ body: (ReportJob) throws -> Void) async throws

    /// The earlier takes the report covers (by their own submission time), in order of batch,
    /// job and take.
    func earlierTakes(_ query: ReportQuery, metadataKeys: [String]) async throws -> [ReportJob]
}
