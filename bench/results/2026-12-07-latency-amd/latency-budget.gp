set terminal pngcairo size 1000,600 noenhanced
set output 'latency-budget.png'
set title 'CPU per packet against loaded round-trip p99 (150000 pps flood, echo probe)'
set logscale x
set xlabel 'loaded round trip p99 (microseconds, log scale)'
set ylabel 'CPU per packet (microseconds)'
set yrange [0:*]
# room on the right for the labels of the slowest points
set offsets graph 0.02, graph 0.3, graph 0.05, 0
set grid
set key off
# labels alternate above and below their points: close points stay readable
plot 'latency-budget.dat' using 2:3 with points pt 7 ps 1.5, \
     '' using 2:($3 + (int($0) % 2 ? -0.3 : 0.3)):1 with labels offset 1,0 left
