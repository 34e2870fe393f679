package ring

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// logBridge receives memberlist's log lines (it logs through a
// *log.Logger with "[LEVEL] memberlist: message" lines) and passes each to
// slog with the level taken from the prefix. It is safe for concurrent use
// because log.Logger serialises writes and slog handlers are concurrent-safe.
type logBridge struct {
	logger *slog.Logger
}

// newMemberlistLogger returns a *log.Logger for memberlist.Config.Logger.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(logBridge{logger: l}, "", 0)
}

// Write logs one line (log.Logger calls Write once per message).
func (b logBridge) Write(p []byte) (int, error) {
	level, msg := parseMemberlistLine(p)
	ctx := context.Background()
	if b.logger.Enabled(ctx, level) {
		b.logger.Log(ctx, level, msg)
	}
	return len(p), nil
}

// parseMemberlistLine splits "[WARN] memberlist: text\n" into a level and
// "text". Lines without a known prefix are logged at info level as they are.
func parseMemberlistLine(p []byte) (slog.Level, string) {
	line := bytes.TrimRight(p, "\r\n")
	level := slog.LevelInfo
	if len(line) > 0 && line[0] == '[' {
		if end := bytes.IndexByte(line, ']'); end > 0 {
			known := true
			switch string(line[1:end]) {
			case "TRACE", "DEBUG":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			default:
				known = false
			}
			if known {
				line = bytes.TrimLeft(line[end+1:], " ")
			}
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	return level, string(line)
}
