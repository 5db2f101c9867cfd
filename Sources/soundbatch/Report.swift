import ArgumentParser
import Foundation
import SoundbatchCore

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what each batch cost, estimated and charged, read from the ledger alone.",
        discussion: """
            Credits estimated are the service's estimates for the jobs it accepted; credits \
            charged are the conversion_cost of finished jobs. Jobs still running or in doubt \
            have no charge yet and are counted apart. On a terminal the table shows the \
            columns that matter most (--wide for all); csv and json always carry every column.

            Examples:
              soundbatch report
              soundbatch report --by day --since 2026-11-01
              soundbatch report --jobs --batch jobs --format csv --output jobs.csv
              soundbatch report --format html --output spend.html
            """)

    @Option(help: "Report on this batch only.")
    var batch: String?

    @Option(
        help: ArgumentHelp(
            "table, csv, json, markdown or html (default: table on a terminal, else csv).", valueName: "format"))
    var format: ReportFormatArgument?

    @Option(help: ArgumentHelp("Totals per batch, day (of submission) or state.", valueName: "grouping"))
    var by: GroupingArgument = GroupingArgument(.batch)

    @Flag(help: "One row per job instead of totals.")
    var jobs = false

    @Flag(help: "Every column in the table format (by default a terminal gets the ones that matter most).")
    var wide = false

    @Option(
        help: ArgumentHelp(
            "Only jobs submitted on or after this date (YYYY-MM-DD, UTC) or time (ISO 8601).", valueName: "date"))
    var since: TimeBoundArgument?

    @Option(
        help: ArgumentHelp(
            "Only jobs submitted before the end of this date (YYYY-MM-DD, UTC) or before this time.", valueName: "date")
    )
    var until: TimeBoundArgument?

    @Option(help: ArgumentHelp("Write to this file (atomically) instead of standard output.", valueName: "file"))
    var output: String?

    @OptionGroup var ledger: LedgerOption

    var chosenFormat: ReportFormat {
        format?.format ?? (output == nil && isatty(STDOUT_FILENO) == 1 ? .table : .csv)
    }

    func validate() throws {
        if jobs && chosenFormat == .html {
            throw ValidationError("--jobs works with the csv, json, markdown or table formats; html shows totals.")
        }
    }

    func run() async throws {
        try await reportingErrors {
            return try await ledger.withOpen(create: false) { ledger in
                let query = ReportQuery(
                    batch: batch, grouping: by.grouping,
                    since: since?.ledgerText(endOfDay: false), until: until?.ledgerText(endOfDay: true))
                guard let output else {
                    return try await write(query, ledger: ledger, to: TextOutput(fd: STDOUT_FILENO))
                }
                let file = try AtomicFile(path: output)
                do {
                    try await write(query, ledger: ledger, to: TextOutput(fd: file.descriptor))
                    try file.commit(sync: false)
                } catch {
                    file.abandon()
                    throw error
                }
            }
        }
    }

    private func write(_ query: ReportQuery, ledger: any LedgerStore, to out: TextOutput) async throws {
        let format = chosenFormat
        if jobs {
            let keys = try await ledger.metadataKeys(query)
            let width = terminalWidth(STDOUT_FILENO)
            try ReportRenderer.writeJobsHeader(format: format, metadataKeys: keys, width: width, to: out)
            var index = 0
            try await ledger.forEachReportLine(query, metadataKeys: keys) { job in
                try ReportRenderer.writeJob(
                    job, index: index, format: format, metadataKeys: keys, width: width, to: out)
                index += 1
            }
            try ReportRenderer.writeJobsFooter(format: format, to: out)
        } else {
            let report = try await ledger.spendReport(query)
            let timeline = format == .html ? try await ledger.creditTimeline(query, points: 300) : []
            let failures = format == .html ? try await ledger.failedJobs(query, limit: 100) : []
            let title = "Sound generation spend" + (batch.map { ": \($0)" } ?? "")
            try ReportRenderer.write(
                report, timeline: timeline, failures: failures, format: format, wide: wide, to: out, title: title,
                generatedAt: Date().ISO8601Format())
        }
        try out.flush()
    }
}

struct ReportFormatArgument: ExpressibleByArgument {
    var format: ReportFormat
    init?(argument: String) {
        guard let format = ReportFormat(rawValue: argument.lowercased()) else { return nil }
        self.format = format
    }
    static var allValueStrings: [String] { ReportFormat.allCases.map(\.rawValue) }
}

struct GroupingArgument: ExpressibleByArgument {
    var grouping: ReportQuery.Grouping
    init(_ grouping: ReportQuery.Grouping) { self.grouping = grouping }
    init?(argument: String) {
        guard let grouping = ReportQuery.Grouping(rawValue: argument.lowercased()) else { return nil }
        self.grouping = grouping
    }
    var defaultValueDescription: String { grouping.rawValue }
    static var allValueStrings: [String] { ReportQuery.Grouping.allCases.map(\.rawValue) }
}
