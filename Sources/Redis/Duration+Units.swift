extension Duration {
    /// Whole milliseconds, as Redis options (BLOCK, PX, IDLE) take them.
    package var milliseconds: Int64 {
        components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a floating-point number, for `Thread.sleep` and rates.
    package var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
