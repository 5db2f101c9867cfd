/// What a feed did with one row.
public enum FeedOutcome: Sendable, Equatable {
    case new
    /// In the batch already (a row set aside as invalid is replaced by a corrected one).
    case known
    /// Its key is in the batch with other content; the text says what to do.
    case conflict(String)

    /// A row whose key an earlier row of the same file has.
    public static func duplicate(id: String) -> FeedOutcome {
        .conflict("the id \"\(id)\" is used by an earlier row of this file; ids must be unique")
    }

    /// What a row whose key is in the ledger already comes to, and whether it `replaces`
    /// the job there: one set aside as invalid (`setAside`, never sent) is replaced by a
    /// changed or corrected row; any other job with other content is a conflict.
    public static func ofKnownRow(
        key: @autoclosure () -> String, sameContent: Bool, setAside: Bool, rowIsValid: Bool
    ) -> (outcome: FeedOutcome, replaces: Bool) {
        if setAside && (!sameContent || rowIsValid) { return (.known, true) }
        if sameContent { return (.known, false) }
        return (
            .conflict(
                "the id \"\(key())\" is already in the ledger with a different prompt, audio_length or webhook_url; "
                    + "give the changed row a new id, or feed it into another batch with --batch"), false
        )
    }
}
