
set terminal pngcairo size 1000,560 noenhanced
set output 'latency.png'
set title 'UDP round-trip time through the firewall namespace (CDF, low rate)'
set logscale x
set xlabel 'round trip (microseconds, log scale)'
set ylabel 'fraction of probes <= x'
set yrange [0:1.001]
set grid
set key bottom right
plot 'latency-noqueue.cdf' using 1:2 with lines lw 2 title 'noqueue', 'latency-nfqueue.cdf' using 1:2 with lines lw 2 title 'nfqueue', 'latency-verdictd.cdf' using 1:2 with lines lw 2 title 'verdictd', 'latency-verdictd_busypoll.cdf' using 1:2 with lines lw 2 title 'verdictd_busypoll', 'latency-libipq.cdf' using 1:2 with lines lw 2 title 'libipq'
