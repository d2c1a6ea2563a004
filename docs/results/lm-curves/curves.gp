reset
set terminal pngcairo size 960,600 noenhanced font 'sans,11'
set output 'train_loss.png'
set title 'training loss'
set xlabel 'step'
set ylabel 'loss'
set grid
set key top right
plot 'run0.train.dat' using 1:2 with lines lw 2 title 'QKV', 'run1.train.dat' using 1:2 with lines lw 2 title 'Q-K=V', 'run2.train.dat' using 1:2 with lines lw 2 title 'Q=K-V', 'run3.train.dat' using 1:2 with lines lw 2 title 'Q=K=V', 'run4.train.dat' using 1:2 with lines lw 2 title 'GQA-2', 'run5.train.dat' using 1:2 with lines lw 2 title 'MQA', 'run6.train.dat' using 1:2 with lines lw 2 title 'Q-GQA-2', 'run7.train.dat' using 1:2 with lines lw 2 title 'Q-MQA'
set terminal svg size 960,600 noenhanced font 'sans,11' background rgb 'white'
set output 'train_loss.svg'
replot
unset output

reset
set terminal pngcairo size 960,600 noenhanced font 'sans,11'
set output 'val_loss.png'
set title 'validation loss'
set xlabel 'step'
set ylabel 'loss'
set grid
set key top right
plot 'run0.val.dat' using 1:2 with linespoints lw 2 title 'QKV', 'run1.val.dat' using 1:2 with linespoints lw 2 title 'Q-K=V', 'run2.val.dat' using 1:2 with linespoints lw 2 title 'Q=K-V', 'run3.val.dat' using 1:2 with linespoints lw 2 title 'Q=K=V', 'run4.val.dat' using 1:2 with linespoints lw 2 title 'GQA-2', 'run5.val.dat' using 1:2 with linespoints lw 2 title 'MQA', 'run6.val.dat' using 1:2 with linespoints lw 2 title 'Q-GQA-2', 'run7.val.dat' using 1:2 with linespoints lw 2 title 'Q-MQA'
set terminal svg size 960,600 noenhanced font 'sans,11' background rgb 'white'
set output 'val_loss.svg'
replot
unset output

