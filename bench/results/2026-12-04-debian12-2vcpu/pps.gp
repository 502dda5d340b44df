
set terminal pngcairo size 1000,560 noenhanced
set output 'pps.png'
set title 'delivered packets per second by case (higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set ylabel 'packets/s'
set yrange [0:*]
set grid ytics
plot 'pps.dat' using 2:xtic(1) title 'no queue', '' using 3 title 'nf-queue.c', \
     '' using 4 title 'verdictd', '' using 5 title 'verdictd busy-poll', \
     '' using 6 title 'libipq passer.c'
