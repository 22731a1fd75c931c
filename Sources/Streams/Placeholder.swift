public enum StreamsPlaceholder {}
