// go-bench: weft-bench's fiber workloads with goroutines, for
// bench/compare.sh. The standard library only: builds offline with
// Debian 12's golang-go (1.19) or any newer Go.
module weft/bench/go-bench

go 1.19
