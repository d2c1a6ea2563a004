reset
set terminal pngcairo size 960,600 noenhanced font 'sans,11'
set output 'sweep_bars.png'
set title 'val_acc per variant (runs/sweep/quick)'
set ylabel 'val_acc'
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set yrange [0:*]
set grid ytics
set key outside right top
set xtics nomirror
plot 'sweep_bars.dat' using 2:3:xtic(1) title 'QKV', 'sweep_bars.dat' using 4:5 title 'Q=K-V', 'sweep_bars.dat' using 6:7 title '(Q=K-V)+', 'sweep_bars.dat' using 8:9 title 'Q-K=V', 'sweep_bars.dat' using 10:11 title 'Q=K=V', 'sweep_bars.dat' using 12:13 title '(Q=K=V)+'
set terminal svg size 960,600 noenhanced font 'sans,11' background rgb 'white'
set output 'sweep_bars.svg'
replot
unset output

