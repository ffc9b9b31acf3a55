#!/usr/bin/perl
# Sisimai's verdicts on a folder of messages, one process, each file parsed once.
#
#   perl bench/sisimai_verdicts.pl DIR...          one line per recipient Sisimai found:
#                                                  path, agent, reason, status, softbounce, command, address
#   perl bench/sisimai_verdicts.pl --count DIR...  one line: the number of recipients (for the benchmark)
#
# Give it folders of files only: Sisimai 4.25 counts a subfolder as a message read, and so stops
# that many files short of the end of the folder (it never reads inside a subfolder either).
# softbounce: 0 = hard, 1 = soft, -1 = not a failure (delivered, feedback, vacation). A file Sisimai
# does not read as a report prints nothing. Used by bench/classify.py (speed, `vs_sisimai`) and
# tests/unit/classify/test_vs_sisimai.py (verdicts); see docs/benchmarks.md.
use strict;
use warnings;
use Sisimai;

my $count_only = @ARGV && $ARGV[0] eq '--count' ? shift @ARGV : 0;
die "usage: $0 [--count] DIR...\n" unless @ARGV;
my @records;
for my $dir (@ARGV) {
    die "$0: $dir is not a folder\n" unless -d $dir;
    push @records, @{ Sisimai->make($dir, delivered => 1) || [] };
}
if ($count_only) {
    print scalar(@records), "\n";
    exit 0;
}
for my $r (@records) {
    my @fields = ($r->origin, $r->smtpagent, $r->reason, $r->deliverystatus, $r->softbounce,
                  $r->smtpcommand, $r->recipient->address);
    print join("\t", map { my $v = $_ // ''; $v =~ s/[\t\r\n]+/ /g; $v } @fields), "\n";
}
