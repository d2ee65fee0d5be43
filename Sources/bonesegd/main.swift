import Daemon
import Foundation

// First: SIGTERM, SIGINT and SIGHUP reach the daemon's loop, SIGPIPE is ignored.
BonesegdMain.prepareSignals()
exit(BonesegdMain.run(arguments: Array(CommandLine.arguments.dropFirst())))
