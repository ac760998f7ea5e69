extension StringProtocol {
    /// Without leading and trailing spaces and tabs: how the configuration's lists and files
    /// (API keys, Redis URLs, the data key ring) are read.
    package func trimmingASCIISpaces() -> SubSequence {
        var text = self[...]
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
