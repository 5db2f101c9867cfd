import Foundation

/// The review page: one HTML document (`Page/review.html`), its script and its style, files
/// of their own kept in the binary at build time (SwiftPM's `embedInCode`), so that a copied
/// `soundbatch` serves them. The page draws rows with the DOM (text is never parsed as HTML)
/// a page of 50 at a time, as the list is scrolled, so a batch of any size opens at once.
enum ReviewPageAssets {
    static func page(batch: String, token: String) -> String {
        let states = JobState.allCases.map { "<option value=\"\($0.rawValue)\">\($0.words)</option>" }.joined()
        return PageTemplate(PackageResources.review_html).filled([
            "batch": ReportRenderer.escapeHTML(batch), "token": token, "states": states
        ])
    }

    /// What a request without the token sees: how to get in, and nothing of the batch.
    static func refusal(_ reason: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>soundbatch review</title></head>
        <body><h1>Not without the token</h1><p>\(ReportRenderer.escapeHTML(reason)).</p></body></html>
        """
    }

    static let style = String(decoding: PackageResources.review_css, as: UTF8.self)
    static let script = String(decoding: PackageResources.review_js, as: UTF8.self)
}

/// A page written as a file of its own, with `{{name}}` where each page is filled in.
struct PageTemplate {
    let text: String

    init(_ bytes: [UInt8]) { text = String(decoding: bytes, as: UTF8.self) }

    /// The page with each `{{name}}` replaced by `values[name]`, in one pass: what is put in
    /// (escaped by the caller where it must be) is never read as a placeholder again.
    func filled(_ values: [String: String]) -> String {
        var page = ""
        var rest = text[...]
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            let name = String(rest[open.upperBound..<close.lowerBound])
            guard let value = values[name] else { preconditionFailure("the page's {{\(name)}} is given no value") }
            page += rest[..<open.lowerBound] + value
            rest = rest[close.upperBound...]
        }
        return page + rest
    }
}
